-- Large objects' metadata: owner, privileges, comments (kind LARGE OBJECT, no schema, named by OID). The
-- rows themselves are data (the archive's large-object part, loaded with their OIDs), so nothing here
-- creates one: these steps are post-data, after the load made the objects, and a restore that does not
-- load the large objects leaves them out. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_largeobject'::regclass::oid AS classid,
       m.oid AS objid,
       'LARGE OBJECT' AS kind,
       NULL::text AS schema,
       m.oid::text AS name,
       pg_catalog.pg_get_userbyid(m.lomowner) AS owner,
       'post-data' AS section,
       NULL::text AS "create",
       m.lomacl::text[] AS acl,
       pg_catalog.acldefault('L', m.lomowner)::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_largeobject_metadata m
ORDER BY m.oid
