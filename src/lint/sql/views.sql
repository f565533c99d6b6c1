-- Which of the names a migration uses are views. $1: the names as written (quoted, qualified or not),
-- resolved through search_path; one row per name that is a view (`CREATE OR REPLACE VIEW` of one locks
-- it ACCESS EXCLUSIVE). Every version.
SELECT n.name
  FROM unnest($1::text[]) AS n(name)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
 WHERE c.relkind = 'v'
