-- Sessions of this database waiting for a lock, other than this one: what they wait for, since when
-- (waitstart: 14+, read through to_jsonb), and the sessions that block them (pg_blocking_pids).
-- One row per waiting lock. Works on PostgreSQL 13 and later.
SELECT l.pid,
       l.locktype,
       l.mode,
       CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text END AS relation,
       extract(epoch FROM now() - (pg_catalog.to_jsonb(l) ->> 'waitstart')::timestamptz)::float8 AS seconds,
       pg_catalog.pg_blocking_pids(l.pid) AS blocked_by,
       a.usename::text AS role
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted
  AND l.pid <> pg_catalog.pg_backend_pid()
  AND a.datname = pg_catalog.current_database()
ORDER BY seconds DESC NULLS LAST, l.pid
