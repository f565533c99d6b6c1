-- Extensions (kind EXTENSION): `CREATE EXTENSION IF NOT EXISTS x WITH SCHEMA s;`, as pg_dump prints it:
-- no VERSION clause, so the copy gets the target server's default version. Extensions created at initdb
-- (plpgsql) exist in every new database and are left out, as pg_dump leaves them out. `owner` is the role
-- that created it: its members belong to that role, so restore creates the extension as that role (there is no
-- ALTER EXTENSION ... OWNER TO). Extensions have no privileges. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_extension'::regclass::oid AS classid,
       e.oid AS objid,
       'EXTENSION'::text AS kind,
       NULL::text AS schema,
       e.extname::text AS name,
       pg_catalog.pg_get_userbyid(e.extowner)::text AS owner,
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
