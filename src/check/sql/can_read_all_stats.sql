-- Whether this role sees every session's state and query in pg_stat_activity: a superuser, or a member
-- of pg_read_all_stats. One row. Works on PostgreSQL 13 and later.
SELECT pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE') AS can_read_all_stats
