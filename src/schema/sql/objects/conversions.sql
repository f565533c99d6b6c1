-- Encoding conversions (kind CONVERSION): `CREATE [DEFAULT] CONVERSION s.c FOR 'src' TO 'dst' FROM f;`.
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_conversion'::regclass::oid AS classid,
       c.oid AS objid,
       'CONVERSION'::text AS kind,
       n.nspname::text AS schema,
       c.conname::text AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format('CREATE %sCONVERSION %I.%I FOR %L TO %L FROM %s;',
              CASE WHEN c.condefault THEN 'DEFAULT ' ELSE '' END, n.nspname, c.conname,
              pg_catalog.pg_encoding_to_char(c.conforencoding), pg_catalog.pg_encoding_to_char(c.contoencoding),
              c.conproc::pg_catalog.regproc::text) AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_conversion c
JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
JOIN pg_catalog.pg_roles r ON r.oid = c.conowner
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND c.oid >= 16384
ORDER BY n.nspname, c.conname
