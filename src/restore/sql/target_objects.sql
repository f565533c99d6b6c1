-- User objects already in the target database, which a whole restore refuses to mix with: relations,
-- routines, types, schemas, extensions and large objects created after initdb; not the extensions named
-- in $1 (text[]: the archive's own, made by a role that may, which the restore keeps) nor their members.
-- At most 6 rows, each described. Works on PostgreSQL 13 and later.
WITH temp_schemas AS (
    SELECT oid FROM pg_catalog.pg_namespace WHERE nspname ~ '^pg_(toast_)?temp_'
), kept AS (
    SELECT oid FROM pg_catalog.pg_extension WHERE extname = ANY ($1::text[])
), found(classid, objid) AS (
    SELECT 'pg_catalog.pg_namespace'::regclass, oid FROM pg_catalog.pg_namespace
     WHERE oid >= 16384 AND oid NOT IN (SELECT oid FROM temp_schemas)
  UNION ALL SELECT 'pg_catalog.pg_extension'::regclass, oid FROM pg_catalog.pg_extension
     WHERE oid >= 16384 AND oid NOT IN (SELECT oid FROM kept)
  UNION ALL SELECT 'pg_catalog.pg_class'::regclass, oid FROM pg_catalog.pg_class
     WHERE oid >= 16384 AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
       AND relnamespace NOT IN (SELECT oid FROM temp_schemas)
  UNION ALL SELECT 'pg_catalog.pg_proc'::regclass, oid FROM pg_catalog.pg_proc WHERE oid >= 16384
  UNION ALL SELECT 'pg_catalog.pg_type'::regclass, oid FROM pg_catalog.pg_type
     WHERE oid >= 16384 AND typtype IN ('e', 'd', 'r', 'b') AND typnamespace NOT IN (SELECT oid FROM temp_schemas)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = pg_type.oid)
  UNION ALL SELECT 'pg_catalog.pg_largeobject'::regclass, oid FROM pg_catalog.pg_largeobject_metadata
)
SELECT i.type || ' ' || i.identity AS description
FROM found
CROSS JOIN LATERAL pg_catalog.pg_identify_object(classid, objid, 0) AS i
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                   WHERE d.classid = found.classid AND d.objid = found.objid AND d.deptype = 'e'
                     AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid IN (SELECT oid FROM kept))
LIMIT 6
