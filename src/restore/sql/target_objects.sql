-- User objects already in the target database, which a whole restore refuses to mix with: relations,
-- routines, types, schemas, extensions and large objects created after initdb; not the extensions named
-- in $1 (text[]: the archive's own, made by a role that may, which the restore keeps, and those the
-- restore needs and leaves out) nor their members, nor the objects the restore needs and leaves out, as
-- $2 (text[]) names them (`schema:s`, `type:s.t`, `function:s.f(int)`, `relation:s.t`: what a dump's or
-- a restore's `-t` left out, which must be in the target), nor the sequences such a relation owns.
-- At most 6 rows, each described. Works on PostgreSQL 13 and later.
WITH temp_schemas AS (
    SELECT oid FROM pg_catalog.pg_namespace WHERE nspname ~ '^pg_(toast_)?temp_'
), kept AS (
    SELECT oid FROM pg_catalog.pg_extension WHERE extname = ANY ($1::text[])
), probes AS (
    SELECT split_part(p, ':', 1) AS kind, substr(p, pg_catalog.strpos(p, ':') + 1) AS name
    FROM unnest($2::text[]) AS p
), needed(classid, objid) AS (
    SELECT 'pg_catalog.pg_namespace'::regclass, pg_catalog.to_regnamespace(name)::oid FROM probes WHERE kind = 'schema'
  UNION ALL SELECT 'pg_catalog.pg_type'::regclass, pg_catalog.to_regtype(name)::oid FROM probes WHERE kind = 'type'
  UNION ALL SELECT 'pg_catalog.pg_proc'::regclass, pg_catalog.to_regprocedure(name)::oid
     FROM probes WHERE kind = 'function'
  UNION ALL SELECT 'pg_catalog.pg_class'::regclass, pg_catalog.to_regclass(name)::oid FROM probes WHERE kind = 'relation'
  UNION ALL SELECT 'pg_catalog.pg_class'::regclass, d.objid FROM pg_catalog.pg_depend d
     WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
       AND d.deptype IN ('a', 'i')
       AND d.refobjid IN (SELECT pg_catalog.to_regclass(name)::oid FROM probes WHERE kind = 'relation')
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
WHERE NOT EXISTS (SELECT 1 FROM needed n WHERE n.classid = found.classid AND n.objid = found.objid)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                   WHERE d.classid = found.classid AND d.objid = found.objid AND d.deptype = 'e'
                     AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid IN (SELECT oid FROM kept))
LIMIT 6
