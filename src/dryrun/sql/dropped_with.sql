-- The tables that dropping the tables $1 and the schemas $2 (text[], resolved through the search path)
-- can drop with them: those, and every table that depends on them as a whole in `pg_depend` however
-- deep (the tables of a schema, partitions, inheritance children, typed tables), which CASCADE drops. A
-- column that depends on them is dropped alone, not its table, and is not followed. From PostgreSQL 9.6.
WITH RECURSIVE dropped(classid, objid) AS (
    SELECT 'pg_catalog.pg_class'::regclass::oid, pg_catalog.to_regclass(t)::oid
      FROM pg_catalog.unnest($1::text[]) AS t
     WHERE pg_catalog.to_regclass(t) IS NOT NULL
    UNION
    SELECT 'pg_catalog.pg_namespace'::regclass::oid, pg_catalog.to_regnamespace(n)::oid
      FROM pg_catalog.unnest($2::text[]) AS n
     WHERE pg_catalog.to_regnamespace(n) IS NOT NULL
  UNION
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d
      JOIN dropped p ON d.refclassid = p.classid AND d.refobjid = p.objid
     WHERE d.objsubid = 0 AND d.deptype IN ('n', 'a', 'i')
)
SELECT c.oid::regclass::text AS name
  FROM dropped x
  JOIN pg_catalog.pg_class c ON x.classid = 'pg_catalog.pg_class'::regclass AND c.oid = x.objid
 WHERE c.relkind = 'r'
 ORDER BY 1
