-- Disabled triggers (ALTER TABLE ... DISABLE TRIGGER): the user's own, and the internal ones that
-- enforce foreign keys (disabled by DISABLE TRIGGER ALL), which leave those foreign keys unenforced.
-- Triggers enabled only for replicas or always (`R`, `A`) are not disabled.
-- One row per trigger; `foreign_key` names the foreign key an internal trigger enforces. Works on
-- PostgreSQL 13 and later.
SELECT t.tgname::text AS name,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS table,
       t.tgisinternal AS internal,
       con.conname::text AS foreign_key,
       pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(cc.relname) AS foreign_key_table
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint con ON con.oid = t.tgconstraint AND con.contype = 'f'
LEFT JOIN pg_catalog.pg_class cc ON cc.oid = con.conrelid
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = cc.relnamespace
WHERE t.tgenabled = 'D'
  AND (NOT t.tgisinternal OR con.oid IS NOT NULL)
ORDER BY 2, 1
