-- PRIMARY KEY, UNIQUE (with NULLS NOT DISTINCT on 15+, as the deparser prints it) and EXCLUDE constraints
-- of tables (kind CONSTRAINT) and foreign keys (kind FK CONSTRAINT), all post-data:
--   ALTER TABLE ONLY s.t ADD CONSTRAINT c <pg_get_constraintdef>;
-- PRIMARY KEY / UNIQUE get their index's storage parameters (WITH (...), which pg_get_constraintdef(oid)
-- leaves out) and, when the index is not in the default tablespace, its tablespace in `tablespace` (the
-- restore sets default_tablespace around the statement), plus CLUSTER ON and REPLICA IDENTITY USING INDEX when the index has them.
-- Constraints of partitioned tables are added with ONLY; a partition's own copy (conparentid <> 0) is added
-- to the partition with its own statement, and indexes.sql attaches its index to the parent's (INDEX ATTACH).
-- But for an exclusion constraint (17+) or a WITHOUT OVERLAPS key (18+) of a partitioned table, whose index
-- the server never attaches (ALTER INDEX ... ATTACH PARTITION: "The index definitions do not match"; nor
-- does ATTACH PARTITION take a partition's own matching one), the constraint is added without ONLY, so that
-- the server makes the copies on every partition below it, and a DO block then gives them their names in
-- the source (see `copy_names` below); the copies' rows have only what follows the constraint (CLUSTER ON,
-- REPLICA IDENTITY), or create NULL.
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
         WHEN c.conexclop IS NOT NULL AND c.conparentid <> 0 THEN
           NULLIF(pg_catalog.ltrim(after.create, E'\n'), '')
         WHEN c.conexclop IS NOT NULL AND t.relkind = 'p' THEN
           pg_catalog.format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s;', n.nspname, t.relname, c.conname, def.sql)
           || COALESCE(
                -- The copies the server makes are named by it; each takes its name in the source, through
                -- a name of its own first, so that two copies may swap names.
                E'\nDO $rename$DECLARE r record; BEGIN\n'
                || E'  FOR phase IN 1..2 LOOP\n'
                || E'    FOR r IN SELECT p.relid::pg_catalog.regclass AS idx, w.name\n'
                || pg_catalog.format(E'      FROM pg_catalog.pg_partition_tree(%L) p\n',
                                     pg_catalog.format('%I.%I', n.nspname, c.conname))
                || E'      JOIN pg_catalog.pg_index i ON i.indexrelid = p.relid\n'
                || E'      JOIN pg_catalog.pg_class ic ON ic.oid = p.relid\n'
                || E'      JOIN (VALUES ' || copy_names.list || E') AS w(rel, name)\n'
                || E'        ON pg_catalog.to_regclass(w.rel) = i.indrelid AND ic.relname <> w.name\n'
                || E'    LOOP\n'
                || E'      EXECUTE pg_catalog.format(''ALTER INDEX %s RENAME TO %I'', r.idx,\n'
                || E'        CASE phase WHEN 1 THEN ''pgsafe_'' || r.idx::pg_catalog.oid ELSE r.name END);\n'
                || E'    END LOOP;\n'
                || E'  END LOOP;\n'
                || 'END$rename$;', '')
           || after.create
         WHEN c.contype = 'f' THEN
           pg_catalog.format('ALTER TABLE %s%I.%I ADD CONSTRAINT %I %s;',
                             CASE WHEN t.relkind = 'p' THEN '' ELSE 'ONLY ' END,
                             n.nspname, t.relname, c.conname, pg_catalog.pg_get_constraintdef(c.oid))
         ELSE
           pg_catalog.format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s;',
                             n.nspname, t.relname, c.conname, def.sql)
           || after.create
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
-- A key's definition: pg_get_constraintdef, with its index's storage parameters for PRIMARY KEY and UNIQUE.
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.contype IN ('p', 'u') AND ic.reloptions IS NOT NULL
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
           ELSE pg_catalog.pg_get_constraintdef(c.oid) END AS sql
) def
-- What follows a key's statement: CLUSTER ON and REPLICA IDENTITY USING INDEX, when its index has them.
CROSS JOIN LATERAL (
    SELECT CASE WHEN i.indisclustered THEN
             pg_catalog.format(E'\nALTER TABLE %I.%I CLUSTER ON %I;', n.nspname, t.relname, ic.relname)
           ELSE '' END
           || CASE WHEN i.indisreplident THEN
                pg_catalog.format(E'\nALTER TABLE ONLY %I.%I REPLICA IDENTITY USING INDEX %I;',
                                  n.nspname, t.relname, ic.relname)
              ELSE '' END AS "create"
) after
-- The names in the source of the copies of an exclusion constraint or WITHOUT OVERLAPS key of a partitioned
-- table, on every partition below it: `('s.partition', 'name'), ...`, NULL when it has none. The function
-- is strict, so it runs only for those constraints.
CROSS JOIN LATERAL (
    SELECT pg_catalog.string_agg(pg_catalog.format('(%L, %L)', pg_catalog.format('%I.%I', pn.nspname, pt.relname),
                                                   pc.relname), ', ' ORDER BY pn.nspname, pt.relname) AS list
    FROM pg_catalog.pg_partition_tree(CASE WHEN c.conexclop IS NOT NULL AND t.relkind = 'p'
                                                AND c.conparentid = 0 THEN c.conindid END) p
    JOIN pg_catalog.pg_class pc ON pc.oid = p.relid
    JOIN pg_catalog.pg_index pi ON pi.indexrelid = p.relid
    JOIN pg_catalog.pg_class pt ON pt.oid = pi.indrelid
    JOIN pg_catalog.pg_namespace pn ON pn.oid = pt.relnamespace
    WHERE p.level > 0
) copy_names
WHERE c.contype IN ('p', 'u', 'x', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
ORDER BY c.oid
