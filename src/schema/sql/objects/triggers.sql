-- Triggers (kind TRIGGER, post-data), constraint triggers (CREATE CONSTRAINT TRIGGER) included:
--   <pg_get_triggerdef>;  plus  ALTER [FOREIGN] TABLE s.t DISABLE | ENABLE REPLICA | ENABLE ALWAYS TRIGGER x;
-- Leaves out internal triggers (those of foreign keys, and other tgisinternal ones), including the RI
-- triggers the server clones onto partitions. A constraint trigger's pg_constraint row (contype 't') is
-- not returned: it is 'i'-dependent on the trigger, so the trigger row stands for it.
-- Triggers cloned onto partitions (tgparentid <> 0; internal on 13/14, not on 15+) are returned with create
-- NULL, or with `ALTER TABLE ONLY part ... TRIGGER x;` when their enabled state is not 'O' or differs from
-- the parent trigger's (the parent's own ALTER, without ONLY, may or may not recurse depending on the
-- server's minor version; the explicit statement makes the result the same either way). They depend on
-- the parent trigger ('P'), so they run after it.
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass::oid AS classid,
       t.oid AS objid,
       'TRIGGER'::text AS kind,
       n.nspname::text AS schema,
       c.relname || ' ' || t.tgname AS name,
       NULL::text AS owner,
       'post-data'::text AS section,
       CASE
         WHEN t.tgparentid <> 0 AND t.tgenabled = 'O' AND t.tgenabled = p.tgenabled THEN NULL
         ELSE
           CASE WHEN t.tgparentid = 0 THEN pg_catalog.pg_get_triggerdef(t.oid, false) || ';' ELSE '' END
           || CASE WHEN t.tgenabled <> 'O' OR (t.tgparentid <> 0 AND t.tgenabled <> p.tgenabled) THEN
                CASE WHEN t.tgparentid = 0 THEN E'\n' ELSE '' END
                || pg_catalog.format('ALTER %s %s%I.%I %s TRIGGER %I;',
                                     CASE WHEN c.relkind = 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                                     CASE WHEN t.tgparentid <> 0 THEN 'ONLY ' ELSE '' END,
                                     n.nspname, c.relname,
                                     CASE t.tgenabled WHEN 'D' THEN 'DISABLE'
                                                      WHEN 'R' THEN 'ENABLE REPLICA'
                                                      WHEN 'A' THEN 'ENABLE ALWAYS'
                                                      ELSE 'ENABLE' END,
                                     t.tgname)
              ELSE '' END
       END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       t.tgrelid AS table_oid
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_trigger p ON p.oid = t.tgparentid
LEFT JOIN pg_catalog.pg_constraint con ON con.oid = t.tgconstraint
WHERE (NOT t.tgisinternal OR t.tgparentid <> 0)
  AND (t.tgconstraint = 0 OR con.contype = 't')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
ORDER BY t.oid
