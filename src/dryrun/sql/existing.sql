-- Which of the columns ($1 tables, text[] resolved through the search path, and $2 their columns' names,
-- text[], pairwise) the table has now, by their position in the arrays (from 1); a table that does not
-- exist has none.
SELECT c.i::int8 AS i
  FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) WITH ORDINALITY AS c(tab, col, i)
 WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = pg_catalog.to_regclass(c.tab) AND a.attname = c.col
                  AND a.attnum > 0 AND NOT a.attisdropped)
