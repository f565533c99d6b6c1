-- Extensions (kind EXTENSION): `CREATE EXTENSION IF NOT EXISTS x WITH SCHEMA s;`, as pg_dump prints it:
-- no VERSION clause, so the copy gets the target server's default version. Extensions created at initdb
-- (plpgsql) exist in every new database and are left out, as pg_dump leaves them out. Extensions have no
-- owner row and no privileges. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_extension'::regclass::oid AS classid,
       e.oid AS objid,
       'EXTENSION'::text AS kind,
       NULL::text AS schema,
       e.extname::text AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I;', e.extname, n.nspname) AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.oid >= 16384
ORDER BY e.extname
