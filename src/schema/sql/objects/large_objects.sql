-- Large objects' metadata: owner, privileges, comments (kind LARGE OBJECT, no schema). The rows themselves
-- are data (the archive's large-object part, loaded with their OIDs), so nothing here creates one: these
-- steps are post-data, after the load made the objects, and a restore that does not load the large objects
-- leaves them out. A database may hold millions of large objects, so, as pg_dump 17 does, they come in
-- groups of up to 1000 with the same owner and privileges, one step each: `members` lists a group's OIDs,
-- objid is the first and the name is `first..last`. Works on PostgreSQL 13 and later.
WITH lo AS (
    SELECT m.oid, m.lomowner, m.lomacl,
           (pg_catalog.row_number() OVER (PARTITION BY m.lomowner, m.lomacl::text[] ORDER BY m.oid) - 1) / 1000
           AS chunk
    FROM pg_catalog.pg_largeobject_metadata m
)
SELECT 'pg_catalog.pg_largeobject'::regclass::oid AS classid,
       pg_catalog.min(lo.oid) AS objid,
       'LARGE OBJECT' AS kind,
       NULL::text AS schema,
       CASE WHEN pg_catalog.count(*) = 1 THEN pg_catalog.min(lo.oid)::text
            ELSE pg_catalog.min(lo.oid)::text || '..' || pg_catalog.max(lo.oid)::text END AS name,
       pg_catalog.pg_get_userbyid(lo.lomowner) AS owner,
       'post-data' AS section,
       NULL::text AS "create",
       lo.lomacl::text[] AS acl,
       pg_catalog.acldefault('L', lo.lomowner)::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid,
       pg_catalog.array_agg(lo.oid ORDER BY lo.oid) AS members
FROM lo
GROUP BY lo.lomowner, lo.lomacl::text[], lo.chunk
ORDER BY 2
