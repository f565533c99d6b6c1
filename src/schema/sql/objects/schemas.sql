-- Schemas (kind SCHEMA): `CREATE SCHEMA s;`. The `public` schema exists in every new database, so it is
-- returned with create NULL and only what was changed is restored, as pg_dump does: its owner only when it
-- is not `pg_database_owner`, its ACL measured against the standard ACL of PostgreSQL 15
-- (`{owner=UC/owner,=U/owner}`, whatever the source's version). Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_namespace'::regclass::oid AS classid,
       n.oid AS objid,
       'SCHEMA'::text AS kind,
       NULL::text AS schema,
       n.nspname::text AS name,
       CASE WHEN n.nspname = 'public' AND r.rolname = 'pg_database_owner' THEN NULL
            ELSE r.rolname::text END AS owner,
       'pre-data'::text AS section,
       CASE WHEN n.nspname = 'public' THEN NULL
            ELSE format('CREATE SCHEMA %I;', n.nspname) END AS "create",
       CASE WHEN n.nspname = 'public' THEN
                 NULLIF(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))::text[], std.acl)
            ELSE n.nspacl::text[] END AS acl,
       CASE WHEN n.nspname = 'public' THEN std.acl
            ELSE coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                           WHERE ip.objoid = n.oid AND ip.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                             AND ip.objsubid = 0),
                          pg_catalog.acldefault('n', n.nspowner))::text[] END AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_namespace n
JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
CROSS JOIN LATERAL (
    SELECT (pg_catalog.acldefault('n', n.nspowner)
            || pg_catalog.makeaclitem(0, n.nspowner, 'USAGE', false))::text[] AS acl
) std
WHERE n.nspname !~ '^pg_'
  AND n.nspname <> 'information_schema'
  AND (n.oid >= 16384 OR n.nspname = 'public')
ORDER BY n.nspname
