-- What dropping the tables $1, the schemas $2, the types $3 (text[], resolved through the search path)
-- and the extensions $4 (names) can drop with them: every table that depends on them as a whole in
-- `pg_depend` however deep (the tables of a schema, partitions, inheritance children, typed tables),
-- which CASCADE drops, with `column` NULL; and every column of a table not so dropped that depends on
-- one of them (a column of a dropped type, of a domain over it, of an array of it, of an extension's
-- type), which CASCADE drops alone, with its name. From PostgreSQL 9.6.
WITH RECURSIVE dropped(classid, objid) AS (
    SELECT 'pg_catalog.pg_class'::regclass::oid, pg_catalog.to_regclass(t)::oid
      FROM pg_catalog.unnest($1::text[]) AS t
     WHERE pg_catalog.to_regclass(t) IS NOT NULL
    UNION
    SELECT 'pg_catalog.pg_namespace'::regclass::oid, pg_catalog.to_regnamespace(n)::oid
      FROM pg_catalog.unnest($2::text[]) AS n
     WHERE pg_catalog.to_regnamespace(n) IS NOT NULL
    UNION
    SELECT 'pg_catalog.pg_type'::regclass::oid, pg_catalog.to_regtype(t)::oid
      FROM pg_catalog.unnest($3::text[]) AS t
     WHERE pg_catalog.to_regtype(t) IS NOT NULL
    UNION
    SELECT 'pg_catalog.pg_extension'::regclass::oid, e.oid
      FROM pg_catalog.pg_extension e
     WHERE e.extname = ANY ($4::text[])
  UNION
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d
      JOIN dropped p ON d.refclassid = p.classid AND d.refobjid = p.objid
     WHERE d.objsubid = 0 AND d.deptype IN ('n', 'a', 'i', 'e')
)
SELECT c.oid::regclass::text AS name, NULL::text AS "column"
  FROM dropped x
  JOIN pg_catalog.pg_class c ON x.classid = 'pg_catalog.pg_class'::regclass AND c.oid = x.objid
 WHERE c.relkind = 'r'
UNION
SELECT c.oid::regclass::text, a.attname::text
  FROM pg_catalog.pg_depend d
  JOIN dropped p ON d.refclassid = p.classid AND d.refobjid = p.objid
  JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objid
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND NOT a.attisdropped
 WHERE d.objsubid > 0 AND d.deptype IN ('n', 'a') AND c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT FROM dropped t WHERE t.classid = 'pg_catalog.pg_class'::regclass AND t.objid = c.oid)
 ORDER BY 1, 2 NULLS FIRST
