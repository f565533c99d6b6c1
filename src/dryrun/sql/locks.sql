-- The relation locks this session holds in this database, with their mode (`AccessExclusiveLock`),
-- outside the system's, TOAST and temporary schemas. A relation dropped in this transaction has no name
-- any more (`name` is null). From PostgreSQL 9.6.
SELECT l.relation::int8 AS oid, c.oid::regclass::text AS name, l.mode
  FROM pg_catalog.pg_locks l
  LEFT JOIN pg_catalog.pg_class c ON c.oid = l.relation
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.granted
   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND (n.nspname IS NULL
        OR (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'))
