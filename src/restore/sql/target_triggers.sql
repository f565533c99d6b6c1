-- The user triggers that would fire during a load into the tables in $1 (qualified names): every trigger
-- on them that is enabled (in any mode: origin 'O', replica 'R', always 'A') and is not one of the triggers
-- PostgreSQL makes for a constraint: user triggers, and the copies of a partitioned table's triggers that
-- PostgreSQL makes on its partitions (marked internal before 15, with tgparentid set). One row per trigger,
-- with its table, name and mode, so that each can be disabled by name and given its own mode back, and the
-- table of $1 whose load fires it: a table loaded through its partitioned table (hash-partitioned on an
-- enum) writes its rows into its partitions, so their triggers fire on its load too. Works on PostgreSQL 13
-- and later.
SELECT table_name, name, mode, loaded_table
FROM (
  SELECT DISTINCT ON (t.oid)
         pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS table_name,
         pg_catalog.quote_ident(t.tgname) AS name,
         t.tgenabled::text AS mode,
         r.loaded AS loaded_table
  FROM (SELECT u.name AS loaded, pg_catalog.to_regclass(u.name) AS relid
        FROM unnest($1::text[]) AS u(name)
        UNION ALL
        SELECT u.name, p.relid
        FROM unnest($1::text[]) AS u(name),
             pg_catalog.pg_partition_tree(pg_catalog.to_regclass(u.name)) AS p) AS r
  JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.relid
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE (NOT t.tgisinternal OR (t.tgparentid <> 0 AND t.tgconstraint = 0))
    AND t.tgenabled <> 'D'
  -- A trigger of a table the restore loads belongs to that table's load, not to its partitioned table's.
  ORDER BY t.oid, r.relid <> t.tgrelid
) AS found
ORDER BY 1, 2
