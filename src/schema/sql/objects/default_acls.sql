-- Default privileges (kind DEFAULT ACL, pg_default_acl, no owner, pre-data: the engine applies ACL-ish
-- kinds last anyway; name as pg_dump's tag "DEFAULT PRIVILEGES FOR TABLES", schema NULL for a global
-- entry). Works on PostgreSQL 13 and later (LARGE OBJECTS, objtype 'L', only occurs from 18 on).
-- The statements rebuild defaclacl item by item in its catalog order:
-- * a global entry (defaclnamespace = 0) replaces the built-in default acldefault(type, role), which is
--   where ALTER DEFAULT PRIVILEGES starts from: first REVOKE ALL from every grantee of that default, then
--   GRANT every item of defaclacl in order;
-- * an entry for a schema only adds to the global one and starts empty: GRANT every item in order.
--   ALTER DEFAULT PRIVILEGES FOR ROLE r [IN SCHEMA s] REVOKE ALL ON TABLES FROM g;
--   ALTER DEFAULT PRIVILEGES FOR ROLE r [IN SCHEMA s] GRANT SELECT, UPDATE ON TABLES TO g|PUBLIC;
--   ... GRANT ... WITH GRANT OPTION;  for the privileges that carry the grant option.
-- An item holding every privilege of its kind is granted as ALL, as pg_dump grants it, so that a newer
-- server adds the privileges it has gained (MAINTAIN on tables from 17).
-- (pg_dump prints fewer statements, the REVOKEs and GRANTs of the difference only; rebuilding from
-- nothing gives the same privileges and also keeps the order of the items, which pg_dump's output
-- follows.)
WITH d AS (
    SELECT a.oid, a.defaclrole, a.defaclnamespace, a.defaclobjtype, a.defaclacl,
           pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I', r.rolname)
           || CASE WHEN a.defaclnamespace <> 0 THEN pg_catalog.format(' IN SCHEMA %I', n.nspname) ELSE '' END
           AS prefix,
           CASE a.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                WHEN 'T' THEN 'TYPES' WHEN 'n' THEN 'SCHEMAS' WHEN 'L' THEN 'LARGE OBJECTS'
           END AS objtypes,
           n.nspname,
           -- The object kind for acldefault.
           CASE WHEN a.defaclobjtype = 'S' THEN 's'::"char" ELSE a.defaclobjtype END AS kind
    FROM pg_catalog.pg_default_acl a
    JOIN pg_catalog.pg_roles r ON r.oid = a.defaclrole
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = a.defaclnamespace
)
SELECT 'pg_catalog.pg_default_acl'::pg_catalog.regclass::oid AS classid,
       d.oid AS objid,
       'DEFAULT ACL'::text AS kind,
       d.nspname::text AS schema,
       'DEFAULT PRIVILEGES FOR ' || d.objtypes AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       pg_catalog.concat_ws(E'\n',
           -- Global entry: take away the built-in default.
           CASE WHEN d.defaclnamespace = 0 THEN
             (SELECT pg_catalog.string_agg(
                         pg_catalog.format('%s REVOKE ALL ON %s FROM %s;', d.prefix, d.objtypes,
                                           CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                                                ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END),
                         E'\n' ORDER BY g.first)
              FROM (SELECT e.grantee, pg_catalog.min(i.ord) AS first
                    FROM pg_catalog.unnest(pg_catalog.acldefault(d.kind, d.defaclrole))
                         WITH ORDINALITY AS i(item, ord),
                         pg_catalog.aclexplode(ARRAY[i.item]) e
                    GROUP BY e.grantee) g)
           END,
           -- Then every item of the entry, in order.
           (SELECT pg_catalog.string_agg(
                       pg_catalog.format('%s GRANT %s ON %s TO %s%s;', d.prefix, p.privs, d.objtypes,
                                         CASE WHEN p.grantee = 0 THEN 'PUBLIC'
                                              ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(p.grantee)) END,
                                         CASE WHEN p.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
                       E'\n' ORDER BY p.ord, p.is_grantable)
            FROM (SELECT i.ord, e.grantee, e.is_grantable,
                         CASE WHEN pg_catalog.count(*) = (SELECT pg_catalog.count(*)
                                                          FROM pg_catalog.aclexplode(pg_catalog.acldefault(
                                                                   d.kind, d.defaclrole)) o
                                                          WHERE o.grantee = d.defaclrole)
                              THEN 'ALL' ELSE pg_catalog.string_agg(e.privilege_type, ', ') END AS privs
                  FROM pg_catalog.unnest(d.defaclacl) WITH ORDINALITY AS i(item, ord),
                       pg_catalog.aclexplode(ARRAY[i.item]) e
                  GROUP BY i.ord, e.grantee, e.is_grantable) p)
       ) AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM d
ORDER BY d.oid
