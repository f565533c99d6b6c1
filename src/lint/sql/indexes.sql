-- Which of the index names a migration creates exist already. $1: the names as written (quoted,
-- qualified or not), resolved through search_path; one row per name that is an index. PostgreSQL 12
-- and later.
SELECT n.name
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
 WHERE c.relkind IN ('i', 'I')
