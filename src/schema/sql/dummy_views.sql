-- Stand-ins for views in a dependency loop ($1: their pg_class OIDs): a view of the same column names,
-- types and collations that selects NULLs, as pg_dump's createDummyViewAsClause writes it. The real
-- query replaces it later with CREATE OR REPLACE VIEW. Works on PostgreSQL 13 and later.
SELECT c.oid,
       pg_catalog.format('CREATE VIEW %I.%I AS SELECT %s;', n.nspname, c.relname,
           COALESCE(pg_catalog.string_agg(
               pg_catalog.format('NULL::%s%s AS %I',
                   pg_catalog.format_type(a.atttypid, a.atttypmod),
                   CASE WHEN a.attcollation <> t.typcollation
                        THEN pg_catalog.format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END,
                   a.attname),
               ', ' ORDER BY a.attnum), '')) AS "create"
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE c.oid = ANY ($1)
GROUP BY c.oid, n.nspname, c.relname
