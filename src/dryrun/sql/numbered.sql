-- The columns of $1 that a sequence numbers (a serial's `DEFAULT nextval(...)`, an identity), each with
-- its sequence (as int8) and the last value it gave (NULL when it gives its start value next, or cannot be
-- read): compared with the sequences' states at the rehearsal's start, a column whose sequence gave values
-- during the migration holds the sequence's values in new rows, no copy of another column's and no key of
-- another table's rows. From PostgreSQL 10.
WITH fed AS (
    SELECT ad.adnum AS attnum, d.refobjid AS seq
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_depend d
      ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.objid = ad.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'n'
    JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
    WHERE ad.adrelid = pg_catalog.to_regclass($1)
    UNION
    SELECT d.refobjsubid, d.objid
    FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refobjid = pg_catalog.to_regclass($1) AND d.deptype = 'i' AND d.refobjsubid > 0
)
SELECT DISTINCT a.attname::text, f.seq::int8 AS seq,
       pg_catalog.has_sequence_privilege(f.seq, 'SELECT,USAGE') AS readable,
       CASE WHEN pg_catalog.has_sequence_privilege(f.seq, 'SELECT,USAGE')
            THEN pg_catalog.pg_sequence_last_value(f.seq) END AS last_value
FROM fed f
JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass($1) AND a.attnum = f.attnum AND NOT a.attisdropped
