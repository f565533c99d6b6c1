-- Sequences that fill an integer column: a serial's (owned by the column, pg_depend deptype `a`) or an
-- identity column's (deptype `i`); with the column, the sequence's increment, and whether the table is
-- partitioned. Not the sequences of system schemas.
-- One row per sequence and column. Works on PostgreSQL 13 and later.
SELECT pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(s.relname) AS sequence,
       pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.relname) AS table,
       pg_catalog.quote_ident(a.attname) AS column,
       seq.seqincrement AS increment
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_sequence seq ON seq.seqrelid = s.oid
JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'p')
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND a.atttypid IN ('pg_catalog.int2'::regtype, 'pg_catalog.int4'::regtype, 'pg_catalog.int8'::regtype)
  AND sn.nspname NOT IN ('pg_catalog', 'information_schema')
  AND sn.nspname NOT LIKE 'pg_toast%'
ORDER BY 1, 2, 3
