-- CHECK constraints of tables, partitioned tables and foreign tables (contype 'c', conrelid <> 0) outside the
-- system schemas, PostgreSQL 13 and later. Kind CHECK CONSTRAINT, named "table constraint":
--   ALTER [FOREIGN] TABLE s.t ADD CONSTRAINT c CHECK (...) [NO INHERIT] [NOT VALID];
-- pre-data when validated, post-data when NOT VALID (as pg_dump; a NOT ENFORCED one, 18+, is never validated,
-- and pg_get_constraintdef says NOT ENFORCED). The statement is without ONLY: it reaches the
-- children that exist by then (creating or merging their copy), and a child created later with INHERITS copies
-- it, so every order gives the source's conislocal/coninhcount. create is NULL for
--   - inherited-only constraints (conislocal false): the parent's statement or INHERITS creates them;
--   - inherited constraints of partitions: tables.sql / foreign_tables.sql write them into the partition's
--     CREATE, because ATTACH PARTITION requires the partition to have them already.
-- Domain constraints are in domains.sql, NOT NULL constraints (18+) in not_null_constraints.sql.
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid AS classid,
       k.oid AS objid,
       'CHECK CONSTRAINT'::text AS kind,
       n.nspname::text AS schema,
       (c.relname || ' ' || k.conname)::text AS name,
       NULL::text AS owner,
       CASE WHEN k.convalidated THEN 'pre-data' ELSE 'post-data' END::text AS section,
       CASE WHEN NOT k.conislocal OR (c.relispartition AND k.coninhcount > 0) THEN NULL
            ELSE 'ALTER ' || CASE WHEN c.relkind = 'f' THEN 'FOREIGN ' ELSE '' END || 'TABLE '
                 || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                 || ' ADD CONSTRAINT ' || pg_catalog.quote_ident(k.conname) || ' '
                 || pg_catalog.pg_get_constraintdef(k.oid) || ';'
       END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       c.oid AS table_oid
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype = 'c'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname !~ '^pg_(toast_)?temp_'
  AND c.relpersistence <> 't'
ORDER BY k.oid
