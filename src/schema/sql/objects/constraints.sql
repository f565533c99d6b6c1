-- PRIMARY KEY, UNIQUE (with NULLS NOT DISTINCT on 15+, as the deparser prints it) and EXCLUDE constraints
-- of tables (kind CONSTRAINT) and foreign keys (kind FK CONSTRAINT), all post-data:
--   ALTER TABLE ONLY s.t ADD CONSTRAINT c <pg_get_constraintdef>;
-- PRIMARY KEY / UNIQUE get their index's storage parameters (WITH (...), which pg_get_constraintdef(oid)
-- leaves out) and, when the index is not in the default tablespace, its tablespace in `tablespace` (the
-- restore sets default_tablespace around the statement), plus CLUSTER ON and REPLICA IDENTITY USING INDEX when the index has them.
-- Constraints of partitioned tables are added with ONLY; a partition's own copy (conparentid <> 0) is added
-- to the partition with its own statement, and indexes.sql attaches its index to the parent's (INDEX ATTACH).
-- Foreign keys on partitioned tables are added without ONLY (the server clones them onto the partitions);
-- those clones, and the per-partition rows the server makes for a foreign key that references a
-- partitioned table, have conparentid <> 0 and are returned with create NULL.
-- pg_get_constraintdef also says what 18 added: NOT ENFORCED foreign keys, WITHOUT OVERLAPS keys and PERIOD
-- foreign keys. CHECK constraints (check_constraints.sql), domain constraints (domains.sql), constraint
-- triggers (triggers.sql) and NOT NULL constraints (not_null_constraints.sql, 18+) are not returned here.
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid AS classid,
       c.oid AS objid,
       CASE c.contype WHEN 'f' THEN 'FK CONSTRAINT' ELSE 'CONSTRAINT' END AS kind,
       n.nspname::text AS schema,
       t.relname || ' ' || c.conname AS name,
       NULL::text AS owner,
       'post-data'::text AS section,
       CASE
         WHEN c.contype = 'f' AND c.conparentid <> 0 THEN NULL
         WHEN c.contype = 'f' THEN
           pg_catalog.format('ALTER TABLE %s%I.%I ADD CONSTRAINT %I %s;',
                             CASE WHEN t.relkind = 'p' THEN '' ELSE 'ONLY ' END,
                             n.nspname, t.relname, c.conname, pg_catalog.pg_get_constraintdef(c.oid))
         ELSE
           pg_catalog.format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s;',
                                n.nspname, t.relname, c.conname,
                                CASE WHEN c.contype IN ('p', 'u') AND ic.reloptions IS NOT NULL
                                          AND pg_catalog.cardinality(ic.reloptions) > 0 THEN
                                     pg_catalog.regexp_replace(
                                         pg_catalog.pg_get_constraintdef(c.oid),
                                         '(( DEFERRABLE)?( INITIALLY DEFERRED)?)$',
                                         ' WITH (' || pg_catalog.replace(
                                             (SELECT pg_catalog.string_agg(
                                                         pg_catalog.quote_ident(o.option_name) || '='
                                                         || pg_catalog.quote_literal(o.option_value), ', ')
                                              FROM pg_catalog.pg_options_to_table(ic.reloptions) o),
                                             '\', '\\') || ')\1')
                                     ELSE pg_catalog.pg_get_constraintdef(c.oid) END)
           || CASE WHEN i.indisclustered THEN
                pg_catalog.format(E'\nALTER TABLE %I.%I CLUSTER ON %I;', n.nspname, t.relname, ic.relname)
              ELSE '' END
           || CASE WHEN i.indisreplident THEN
                pg_catalog.format(E'\nALTER TABLE ONLY %I.%I REPLICA IDENTITY USING INDEX %I;',
                                  n.nspname, t.relname, ic.relname)
              ELSE '' END
       END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       pg_catalog.pg_relation_size(c.conrelid) AS size,
       c.conrelid AS table_oid,
       ts.spcname::text AS tablespace
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_index i ON c.contype <> 'f' AND i.indexrelid = c.conindid
LEFT JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid = ic.reltablespace
WHERE c.contype IN ('p', 'u', 'x', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
ORDER BY c.oid
