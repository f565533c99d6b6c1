-- The columns that a referential action sets when rows of the tables $1 (text[], resolved through the
-- search path) are deleted ($2 false: ON DELETE) or have their key changed ($2 true: ON UPDATE): those of
-- the foreign keys referencing them with SET NULL or SET DEFAULT, with the value they are set to (the
-- column's default as SQL, or null for NULL). From PostgreSQL 9.6.
SELECT c.conrelid::regclass::text AS "table", a.attname::text AS "column",
       CASE WHEN (CASE WHEN $2 THEN c.confupdtype ELSE c.confdeltype END) = 'd'
            THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END AS value
  FROM pg_catalog.pg_constraint c
  CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) AS k(attnum)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.conrelid AND d.adnum = k.attnum
 WHERE c.contype = 'f'
   AND c.confrelid IN (SELECT pg_catalog.to_regclass(t)::oid FROM pg_catalog.unnest($1::text[]) AS t)
   AND (CASE WHEN $2 THEN c.confupdtype ELSE c.confdeltype END) IN ('n', 'd')
 ORDER BY 1, 2
