-- The column types whose binary COPY form cannot be restored into another database, so that a table
-- with such a column must be copied as text:
--   * a type without binary send or receive functions (aclitem, contrib seg and isn, some user types),
--   * a reg* type (binary carries raw OIDs, which name other objects in another database),
--   * an array or composite whose element or member type is not built in (binary arrays and records
--     carry their element and member type OIDs, which differ in another database),
--   * int2vector and oidvector (their binary receive functions refuse an empty vector), and tsquery
--     (its binary receive refuses the empty query that plainto_tsquery makes of stop words alone,
--     "operand not found", on most servers of 13 to 18 as released),
--   * xml in a database whose encoding is not UTF8 (its binary send puts an XML declaration naming the
--     client encoding before the value, which the receiving side then keeps),
-- anywhere inside the type: through arrays, domains, ranges, multiranges and composites.
-- $1: column type oids (int8[]). One row per type that needs text. Works on PostgreSQL 13 only (it has no multiranges).
WITH RECURSIVE
edges(parent, child, via) AS (
    SELECT oid, typelem, 'element' FROM pg_catalog.pg_type WHERE typelem <> 0 AND typlen = -1
    UNION ALL SELECT oid, typbasetype, 'domain' FROM pg_catalog.pg_type WHERE typtype = 'd'
    UNION ALL SELECT rngtypid, rngsubtype, 'range' FROM pg_catalog.pg_range
    UNION ALL SELECT t.oid, a.atttypid, 'member'
              FROM pg_catalog.pg_type t
              JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid
              WHERE t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped
),
tree(root, typ, via) AS (
    SELECT t, t, 'column' FROM unnest($1::int8[]::oid[]) AS t
    UNION
    SELECT tree.root, e.child, e.via FROM tree JOIN edges e ON e.parent = tree.typ
)
SELECT DISTINCT tree.root::int8 AS type_oid
FROM tree
JOIN pg_catalog.pg_type ty ON ty.oid = tree.typ
WHERE ty.typsend = 0
   OR ty.typreceive = 0
   OR ty.typname IN ('regclass', 'regcollation', 'regconfig', 'regdictionary', 'regnamespace', 'regoper',
                     'regoperator', 'regproc', 'regprocedure', 'regrole', 'regtype')
      AND ty.typnamespace = 'pg_catalog'::regnamespace
   OR ty.oid IN ('pg_catalog.int2vector'::pg_catalog.regtype, 'pg_catalog.oidvector'::pg_catalog.regtype,
                 'pg_catalog.tsquery'::pg_catalog.regtype)
   OR ty.oid = 'pg_catalog.xml'::pg_catalog.regtype AND pg_catalog.getdatabaseencoding() <> 'UTF8'
   OR (tree.via IN ('element', 'member') AND ty.oid >= 16384)
