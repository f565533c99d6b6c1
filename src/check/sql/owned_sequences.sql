-- Sequences that fill an integer column: a serial's (owned by the column, pg_depend deptype `a`), an
-- identity column's (deptype `i`), or one a column's default calls (`nextval('s')`: the default depends
-- on the sequence, deptype `n`; schemas written by hand or by other tools often leave sequences unowned);
-- with the column, the sequence's increment. Not the sequences of system schemas, nor a partition whose
-- parent's column takes from the same sequence (the parent's rows are the partitions').
-- One row per sequence and column. Works on PostgreSQL 13 and later.
WITH filled AS (
    SELECT d.objid AS sequence, d.refobjid AS table_oid, d.refobjsubid AS attnum
    FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.deptype IN ('a', 'i')
      AND d.refobjsubid > 0
    UNION
    SELECT d.refobjid, ad.adrelid, ad.adnum
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
    WHERE d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.deptype = 'n'
)
SELECT pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(s.relname) AS sequence,
       pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.relname) AS table,
       pg_catalog.quote_ident(a.attname) AS column,
       seq.seqincrement AS increment
FROM filled f
JOIN pg_catalog.pg_class s ON s.oid = f.sequence AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_sequence seq ON seq.seqrelid = s.oid
JOIN pg_catalog.pg_class t ON t.oid = f.table_oid AND t.relkind IN ('r', 'p')
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = f.attnum AND NOT a.attisdropped
WHERE a.atttypid IN ('pg_catalog.int2'::regtype, 'pg_catalog.int4'::regtype, 'pg_catalog.int8'::regtype)
  AND sn.nspname NOT IN ('pg_catalog', 'information_schema')
  AND sn.nspname NOT LIKE 'pg_toast%'
  -- A partition whose parent takes values from the same sequence is counted with its parent.
  AND NOT (t.relispartition AND EXISTS (
      SELECT 1
      FROM pg_catalog.pg_inherits i
      JOIN filled p ON p.table_oid = i.inhparent AND p.sequence = f.sequence
      WHERE i.inhrelid = t.oid))
ORDER BY 1, 2, 3
