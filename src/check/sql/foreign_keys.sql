-- Every foreign key to check for violations: declared on its table (not the copies PostgreSQL makes on
-- partitions), enforced (NOT ENFORCED ones, 18+, promise nothing), NOT VALID ones included; with its
-- columns in key order, quoted, whether each side is partitioned (its rows are in the partitions), its
-- match type and whether it is a temporal key (18+: its rows are not matched by equality).
-- One row per foreign key. Works on PostgreSQL 13 and later (conenforced, conperiod: read through
-- to_jsonb, 18+).
SELECT con.conname::text AS name,
       pg_catalog.quote_ident(chn.nspname) || '.' || pg_catalog.quote_ident(ch.relname) AS child,
       ch.relkind = 'p' AS child_partitioned,
       pg_catalog.quote_ident(pan.nspname) || '.' || pg_catalog.quote_ident(pa.relname) AS parent,
       pa.relkind = 'p' AS parent_partitioned,
       con.confmatchtype = 'f' AS match_full,
       ARRAY(SELECT pg_catalog.quote_ident(a.attname)
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS child_columns,
       ARRAY(SELECT pg_catalog.quote_ident(a.attname)
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.i) AS parent_columns,
       con.convalidated AS validated,
       coalesce((pg_catalog.to_jsonb(con) ->> 'conperiod')::boolean, false) AS period
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class ch ON ch.oid = con.conrelid
JOIN pg_catalog.pg_namespace chn ON chn.oid = ch.relnamespace
JOIN pg_catalog.pg_class pa ON pa.oid = con.confrelid
JOIN pg_catalog.pg_namespace pan ON pan.oid = pa.relnamespace
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND coalesce((pg_catalog.to_jsonb(con) ->> 'conenforced')::boolean, true)
ORDER BY 2, 1
