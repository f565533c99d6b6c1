-- The roles objects of the current database refer to (owners, grantees, policy roles), from
-- pg_shdepend. Works on PostgreSQL 13 and later.
SELECT DISTINCT r.rolname AS name
FROM pg_catalog.pg_shdepend d
JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass
  AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
ORDER BY 1
