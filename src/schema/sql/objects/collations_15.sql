-- Collations (kind COLLATION): `CREATE COLLATION s.c (provider = ..., [deterministic = false,] locale =
-- '...' | lc_collate = '...', lc_ctype = '...');`. The collation version is not restored: the target's
-- library gives its own, as with pg_dump. PostgreSQL 15 only (colliculocale; no ICU rules);
-- collations.sql serves 13 and 14, collations_16.sql 16, collations_17.sql 17 and later.
SELECT 'pg_catalog.pg_collation'::regclass::oid AS classid,
       c.oid AS objid,
       'COLLATION'::text AS kind,
       n.nspname::text AS schema,
       c.collname::text AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format('CREATE COLLATION %I.%I (provider = %s', n.nspname, c.collname,
              CASE c.collprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc' ELSE 'default' END)
       || CASE WHEN NOT c.collisdeterministic THEN ', deterministic = false' ELSE '' END
       || CASE WHEN c.colliculocale IS NOT NULL
               THEN ', locale = ' || quote_literal(c.colliculocale)
               WHEN c.collcollate = c.collctype
               THEN ', locale = ' || quote_literal(c.collcollate)
               ELSE ', lc_collate = ' || quote_literal(c.collcollate)
                    || ', lc_ctype = ' || quote_literal(c.collctype) END
       || ');' AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_collation c
JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace
JOIN pg_catalog.pg_roles r ON r.oid = c.collowner
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND c.oid >= 16384
ORDER BY n.nspname, c.collname
