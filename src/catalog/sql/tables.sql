-- Tables whose rows a dump copies: ordinary tables, including partitions and inheritance children,
-- unlogged ones too; not temporary tables, not system schemas. Tables that belong to an extension are
-- created by CREATE EXTENSION and skipped, except its configuration tables (pg_extension_config_dump),
-- whose rows are copied with the extension's filter condition. Sizes are read now, in the snapshot.
-- One row per table. Works on PostgreSQL 13 and later.
SELECT c.oid::int8 AS oid,
       n.nspname AS schema,
       c.relname AS name,
       pg_catalog.pg_table_is_visible(c.oid) AS visible,
       sz.bytes,
       sz.bytes / current_setting('block_size')::int8 AS pages,
       greatest(c.reltuples, 0)::int8 AS estimated_rows,
       c.relpersistence = 'u' AS unlogged,
       CASE WHEN e.oid IS NOT NULL
            THEN e.extcondition[array_position(e.extconfig, c.oid)] END AS extension_condition,
       route.schema AS route_schema,
       route.name AS route_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend d
       ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
-- A partition under a hash partitioning on an enum column: the hashes of enum values follow their OIDs,
-- which a restore makes anew, so its rows must be routed again, through the topmost partitioned table
-- (pg_dump forces --load-via-partition-root for these, for the same reason). NULL for any other table.
LEFT JOIN LATERAL (
    SELECT rn.nspname AS schema, r.relname AS name
    FROM pg_catalog.pg_partition_ancestors(c.oid) WITH ORDINALITY AS a(relid, depth)
    JOIN pg_catalog.pg_class r ON r.oid = a.relid
    JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
    WHERE c.relispartition
      AND EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(c.oid) h
                  JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = h.relid
                  JOIN pg_catalog.pg_opclass oc ON oc.oid = ANY (pt.partclass::oid[])
                  JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod
                  WHERE pt.partstrat = 'h' AND am.amname = 'hash' AND oc.opcname = 'enum_ops'
                    AND oc.opcnamespace = 'pg_catalog'::regnamespace)
    ORDER BY a.depth DESC
    LIMIT 1
) route ON true
-- Once per table: each call opens the relation and stats its files, which adds up over many tables.
CROSS JOIN LATERAL (SELECT pg_catalog.pg_relation_size(c.oid) AS bytes) AS sz
WHERE c.relkind = 'r'
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_'
  AND (d.objid IS NULL OR c.oid = ANY (e.extconfig))
ORDER BY n.nspname, c.relname
