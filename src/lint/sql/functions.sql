-- Whether the functions a new column's default calls are volatile. $1: their names as written, without
-- schema (lower case unless quoted); one row per name a function of the database has, volatile when any
-- function of that name is (the arguments are not resolved). PostgreSQL 9.6 and later.
SELECT p.proname::text AS name, bool_or(p.provolatile = 'v') AS volatile
  FROM pg_catalog.pg_proc p
 WHERE p.proname = ANY ($1::text[])
 GROUP BY p.proname
