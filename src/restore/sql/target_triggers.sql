-- The user triggers that would fire during a load into the tables in $1 (qualified names): every trigger
-- on them that is enabled (in any mode: origin 'O', replica 'R', always 'A') and is not one of the triggers
-- PostgreSQL makes for a constraint: user triggers, and the copies of a partitioned table's triggers that
-- PostgreSQL makes on its partitions (marked internal before 15, with tgparentid set). One row per trigger,
-- with its table, name and mode, so that each can be disabled by name and given its own mode back. Works on
-- PostgreSQL 13 and later.
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS table_name,
       pg_catalog.quote_ident(t.tgname) AS name,
       t.tgenabled::text AS mode
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgrelid IN (SELECT pg_catalog.to_regclass(u.name) FROM unnest($1::text[]) AS u(name))
  AND (NOT t.tgisinternal OR (t.tgparentid <> 0 AND t.tgconstraint = 0))
  AND t.tgenabled <> 'D'
ORDER BY 1, 2
