-- Active statements of this database running longer than $1 seconds (float8), other than this
-- session's; the statement's first 200 characters. Sessions of other roles show no state or query to a
-- role without pg_read_all_stats, so they are not listed (see `can_read_all_stats`).
-- One row per session. Works on PostgreSQL 13 and later.
SELECT a.pid,
       a.usename::text AS role,
       extract(epoch FROM now() - a.query_start)::float8 AS seconds,
       left(a.query, 200) AS query
FROM pg_catalog.pg_stat_activity a
WHERE a.state = 'active'
  AND a.pid <> pg_catalog.pg_backend_pid()
  AND a.datname = pg_catalog.current_database()
  AND a.backend_type = 'client backend'
  AND now() - a.query_start > $1::float8 * interval '1 second'
ORDER BY a.query_start
