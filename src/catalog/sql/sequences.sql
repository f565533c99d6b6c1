-- Sequences whose values a dump records; not those of extensions (but their configuration sequences),
-- not in system schemas.
-- One row per sequence, with the table that owns it (a serial's `OWNED BY`, an identity column's), whose
-- selection by `-t` takes the sequence along, as pg_dump does. Works on PostgreSQL 13 and later.
SELECT c.oid::int8 AS oid,
       n.nspname AS schema,
       c.relname AS name,
       pg_catalog.pg_table_is_visible(c.oid) AS visible,
       c.relpersistence = 'u' AS unlogged,
       o.nspname AS owner_schema,
       o.relname AS owner_name,
       o.visible AS owner_visible
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT tn.nspname, tc.relname, pg_catalog.pg_table_is_visible(tc.oid) AS visible
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
    JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.objsubid = 0
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    LIMIT 1
) o ON true
WHERE c.relkind = 'S'
  AND n.nspname <> 'information_schema'
  AND n.nspname !~ '^pg_'
  -- An extension's sequence comes back with the extension, at its start, except one its script marked
  -- as configuration (pg_extension_config_dump), whose value is the user's, as pg_dump has it.
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
                    AND NOT c.oid = ANY (coalesce(e.extconfig, '{}')))
ORDER BY n.nspname, c.relname
