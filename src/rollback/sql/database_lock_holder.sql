-- The session that holds pgsafe's advisory lock of a database in this (the maintenance) database, given
-- the lock's bigint key as its high ($1) and low ($2) 32 bits, which is how pg_locks shows it (objsubid 1).
-- At most one row: its pid, application_name, role, client ('local' for a Unix socket) and start (UTC).
-- application_name and pid show for every session; the client and the start are NULL when this role may
-- not see the session's details (another role's, without pg_read_all_stats). Works on PostgreSQL 10 and
-- later.
SELECT a.pid,
       coalesce(a.application_name, '') AS application_name,
       coalesce(a.usename::text, '') AS role,
       CASE WHEN a.client_port = -1 THEN 'local' ELSE host(a.client_addr) END AS client,
       to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  AND l.classid::int8 = $1
  AND l.objid::int8 = $2
  AND l.objsubid = 1
LIMIT 1
