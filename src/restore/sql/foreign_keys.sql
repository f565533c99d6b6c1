-- The foreign keys that involve any of the tables in $1 (qualified names), on either side, declared on
-- the table itself (not the copies PostgreSQL makes on partitions), with their columns in key order.
-- Only validated ones: a NOT VALID foreign key (and a NOT ENFORCED one, 18+, which is never valid) does not
-- promise that the rows hold, and the source's own rows may break it. One row per foreign key. Works on
-- PostgreSQL 13 and later.
SELECT con.conname AS name,
       con.conrelid::regclass::text AS child,
       ch.relkind::text AS child_kind,
       con.confrelid::regclass::text AS parent,
       pa.relkind::text AS parent_kind,
       con.confmatchtype::text AS match_type,
       ARRAY(SELECT pg_catalog.quote_ident(a.attname)
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS child_columns,
       ARRAY(SELECT pg_catalog.quote_ident(a.attname)
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS parent_columns
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class ch ON ch.oid = con.conrelid
JOIN pg_catalog.pg_class pa ON pa.oid = con.confrelid
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND con.convalidated
  AND (con.conrelid = ANY (SELECT pg_catalog.to_regclass(n) FROM unnest($1::text[]) AS n)
    OR con.confrelid = ANY (SELECT pg_catalog.to_regclass(n) FROM unnest($1::text[]) AS n))
ORDER BY 2, 1
