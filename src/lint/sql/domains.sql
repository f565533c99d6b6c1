-- The domains with constraints among the types of the columns a migration adds. $1: the type names as
-- written (quoted, qualified or not), resolved through search_path; one row per name that is a domain
-- with a CHECK or NOT NULL constraint of its own or of a domain it is made from (what PostgreSQL checks
-- every existing row against when such a column is added). PostgreSQL 9.6 and later.
WITH RECURSIVE chain AS (
    SELECT n.name, t.oid, t.typbasetype, t.typnotnull
      FROM unnest($1::text[]) AS n(name)
      JOIN pg_catalog.pg_type t ON t.oid = pg_catalog.to_regtype(n.name) AND t.typtype = 'd'
    UNION ALL
    SELECT c.name, t.oid, t.typbasetype, t.typnotnull
      FROM chain c
      JOIN pg_catalog.pg_type t ON t.oid = c.typbasetype AND t.typtype = 'd'
)
SELECT DISTINCT c.name
  FROM chain c
 WHERE c.typnotnull
    OR EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.contypid = c.oid)
