-- The columns of $1 that a sequence numbers (a serial's `DEFAULT nextval(...)`, an identity) once it has
-- given a value (or cannot be read): their values in new rows are the sequence's, no copy of another
-- column's and no key of another table's rows. A sequence that has given nothing (a new table filled with
-- ids of its own) numbers nothing yet. From PostgreSQL 10.
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
SELECT DISTINCT a.attname::text
FROM fed f
JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass($1) AND a.attnum = f.attnum AND NOT a.attisdropped
WHERE NOT pg_catalog.has_sequence_privilege(f.seq, 'SELECT')
   OR pg_catalog.pg_sequence_last_value(f.seq) IS NOT NULL
