-- pg_catalog relations and procedural languages (OIDs below 16384) whose privileges differ from what initdb
-- gave them (pg_init_privs), as pg_dump dumps them: kind ACL, no statement of its own, only the privileges
-- (relations with changed column privileges only are returned too, for column_acls.sql to attach to).
-- System functions with changed privileges come from functions.sql. Works on PostgreSQL 13 and later.
WITH init AS (
    SELECT classoid, objoid, initprivs::text[] AS acl
    FROM pg_catalog.pg_init_privs
    WHERE objsubid = 0
)
SELECT 'pg_catalog.pg_class'::regclass::oid AS classid,
       c.oid AS objid,
       'ACL'::text AS kind,
       n.nspname::text AS schema,
       c.relname::text AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       NULL::text AS "create",
       coalesce(c.relacl::text[], pg_catalog.acldefault('r', c.relowner)::text[]) AS acl,
       coalesce(i.acl, pg_catalog.acldefault('r', c.relowner)::text[]) AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN init i ON i.classoid = 'pg_catalog.pg_class'::regclass AND i.objoid = c.oid
WHERE c.oid < 16384
  AND n.nspname = 'pg_catalog'
  AND (coalesce(c.relacl::text[], pg_catalog.acldefault('r', c.relowner)::text[])
         IS DISTINCT FROM coalesce(i.acl, pg_catalog.acldefault('r', c.relowner)::text[])
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                  LEFT JOIN pg_catalog.pg_init_privs ip
                         ON ip.classoid = 'pg_catalog.pg_class'::regclass AND ip.objoid = a.attrelid
                        AND ip.objsubid = a.attnum
                  WHERE a.attrelid = c.oid AND a.attnum <> 0
                    AND a.attacl::text[] IS DISTINCT FROM ip.initprivs::text[]))
UNION ALL
SELECT 'pg_catalog.pg_language'::regclass::oid,
       l.oid,
       'ACL',
       NULL,
       l.lanname::text,
       NULL,
       'pre-data',
       NULL,
       coalesce(l.lanacl::text[], pg_catalog.acldefault('l', l.lanowner)::text[]),
       coalesce(i.acl, pg_catalog.acldefault('l', l.lanowner)::text[]),
       NULL,
       NULL
FROM pg_catalog.pg_language l
LEFT JOIN init i ON i.classoid = 'pg_catalog.pg_language'::regclass AND i.objoid = l.oid
WHERE l.oid < 16384
  AND coalesce(l.lanacl::text[], pg_catalog.acldefault('l', l.lanowner)::text[])
        IS DISTINCT FROM coalesce(i.acl, pg_catalog.acldefault('l', l.lanowner)::text[])
