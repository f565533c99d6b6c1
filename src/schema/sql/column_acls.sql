-- Column privileges that differ from what the column started with: one row per column, with its ACL and
-- the initial one (pg_init_privs for system relations, none otherwise). Works on PostgreSQL 13 and later.
SELECT a.attrelid AS table_oid, a.attname AS name, coalesce(a.attacl::text[], '{}') AS acl,
       coalesce(ip.initprivs::text[], '{}') AS acl_default
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_init_privs ip
       ON ip.classoid = 'pg_catalog.pg_class'::regclass AND ip.objoid = a.attrelid AND ip.objsubid = a.attnum
WHERE a.attnum <> 0 AND NOT a.attisdropped
  AND a.attacl::text[] IS DISTINCT FROM ip.initprivs::text[]
ORDER BY a.attrelid, a.attnum
