-- Rewrite rules (kind RULE, post-data): `<pg_get_ruledef>` (which ends with ';') plus
-- `ALTER TABLE s.t DISABLE RULE r;` / `ENABLE REPLICA RULE` / `ENABLE ALWAYS RULE` for ev_enabled
-- other than 'O'. Leaves out the `_RETURN` rules of views and materialized views (the view's own
-- definition; views.sql creates them, and the rule stands for its view through its 'i' dependency).
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass::oid AS classid,
       r.oid AS objid,
       'RULE'::text AS kind,
       n.nspname::text AS schema,
       c.relname || ' ' || r.rulename AS name,
       NULL::text AS owner,
       'post-data'::text AS section,
       pg_catalog.pg_get_ruledef(r.oid, false)
       || CASE WHEN r.ev_enabled <> 'O' THEN
            pg_catalog.format(E'\nALTER %s %I.%I %s RULE %I;',
                              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                              n.nspname, c.relname,
                              CASE r.ev_enabled WHEN 'D' THEN 'DISABLE'
                                                WHEN 'R' THEN 'ENABLE REPLICA'
                                                WHEN 'A' THEN 'ENABLE ALWAYS'
                                                ELSE 'ENABLE' END,
                              r.rulename)
          ELSE '' END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       r.ev_class AS table_oid
FROM pg_catalog.pg_rewrite r
JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT (r.rulename = '_RETURN' AND c.relkind IN ('v', 'm'))
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
ORDER BY r.oid
