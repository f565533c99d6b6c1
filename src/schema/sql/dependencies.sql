-- Every dependency between objects of the current database that orders their creation: normal, auto,
-- internal, partition and extension memberships. One row per pg_depend entry, sub-object ids dropped.
-- Works on PostgreSQL 13 and later.
SELECT DISTINCT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype::text AS deptype
FROM pg_catalog.pg_depend d
WHERE d.deptype IN ('n', 'a', 'i', 'P', 'S', 'e', 'x')
  AND d.classid <> 0
  AND d.refclassid <> 0
  AND d.objid >= 16384
