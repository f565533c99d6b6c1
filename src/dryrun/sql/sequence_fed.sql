-- The columns a sequence fills (a serial's `DEFAULT nextval(...)`, an identity) that a unique index of
-- their own keeps unique, of the tables this transaction has written rows into (a partition's counting
-- for the table at its root), or named in $2 (written by a command on a scratch copy), or fed by one of
-- the sequences $1 (those the migration made or moved back):
-- where an INSERT that takes the default fails once the sequence is behind the values there. One row a
-- sequence, the table at the top of a partition tree first. Temporary tables, and sequences and columns
-- the session may not read, are left out.
WITH fed AS (
    SELECT ad.adrelid AS rel, ad.adnum AS attnum, d.refobjid AS seq
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_depend d
      ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'n'
    UNION
    SELECT d.refobjid, d.refobjsubid, d.objid
    FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.deptype = 'i' AND d.refobjsubid > 0
),
written AS (
    SELECT s.relid AS rel FROM pg_catalog.pg_stat_xact_user_tables s WHERE s.n_tup_ins > 0 OR s.n_tup_upd > 0
    UNION
    SELECT pg_catalog.pg_partition_root(s.relid) FROM pg_catalog.pg_stat_xact_user_tables s
    WHERE (s.n_tup_ins > 0 OR s.n_tup_upd > 0) AND pg_catalog.pg_partition_root(s.relid) IS NOT NULL
    UNION
    SELECT pg_catalog.to_regclass(n)::oid FROM unnest($2::text[]) AS n WHERE pg_catalog.to_regclass(n) IS NOT NULL
)
SELECT DISTINCT ON (f.seq)
       f.rel::pg_catalog.regclass::text AS "table",
       a.attname::text AS "column",
       f.seq::pg_catalog.regclass::text AS sequence,
       f.seq::int8 AS sequence_oid,
       q.seqincrement AS increment
FROM fed f
JOIN pg_catalog.pg_sequence q ON q.seqrelid = f.seq
JOIN pg_catalog.pg_class c ON c.oid = f.rel AND c.relpersistence <> 't'
JOIN pg_catalog.pg_attribute a ON a.attrelid = f.rel AND a.attnum = f.attnum AND NOT a.attisdropped
WHERE (f.rel IN (SELECT rel FROM written) OR f.seq::int8 = ANY ($1::int8[]))
  AND pg_catalog.has_sequence_privilege(q.seqrelid, 'SELECT')
  AND pg_catalog.has_column_privilege(f.rel, a.attname::text, 'SELECT')
  AND EXISTS (SELECT FROM pg_catalog.pg_index i
              WHERE i.indrelid = f.rel AND i.indisunique AND i.indnkeyatts = 1 AND i.indkey[0] = f.attnum
                AND i.indpred IS NULL)
ORDER BY f.seq, c.relispartition
