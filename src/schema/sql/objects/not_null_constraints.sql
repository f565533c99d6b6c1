-- NOT NULL constraints of tables, partitioned tables and foreign tables (contype 'n', conrelid <> 0) outside
-- the system schemas. PostgreSQL 18 keeps them in pg_constraint with a name, NO INHERIT, NOT VALID and their
-- own conislocal/coninhcount; before 18 NOT NULL is only a column flag and there are no such rows (17 has
-- them for domains only, see domains.sql). Kind CONSTRAINT (pg_dump's label), named "table constraint":
-- - a valid one that the table declares itself (conislocal), or that a parent gives validly, is made by the
--   table's CREATE TABLE or ALTER TABLE INHERIT (tables.sql, foreign_tables.sql), by INHERITS or by ATTACH
--   PARTITION: create NULL, pre-data;
-- - a NOT VALID one cannot be made by CREATE TABLE and must follow the rows it was never checked against. As
--   pg_dump does, one the table declares itself is its own post-data statement
--     ALTER [FOREIGN] TABLE s.t ADD CONSTRAINT c NOT NULL col [NO INHERIT] NOT VALID;
--   without ONLY, so that it reaches the children, which get their copies from it (create NULL, post-data);
-- - a valid one that only NOT VALID parents give (the child was created or validated after them) comes from
--   the parents' statement too, and is then validated on its own, which keeps it inherited-only:
--     ALTER [FOREIGN] TABLE s.t VALIDATE CONSTRAINT c;
--   (pg_dump declares it in the child's CREATE TABLE instead, which makes it local.)
-- dependencies.sql orders a table's own NOT VALID constraint before its ancestors' and an inherited copy after
-- its parents'. For PostgreSQL 18 and later.
WITH k AS (
    SELECT k.oid, k.conname, k.convalidated, k.conislocal, k.conrelid, c.relname, c.relkind, n.nspname,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qname,
           EXISTS (SELECT FROM pg_catalog.pg_inherits i
                   JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attname = a.attname
                   JOIN pg_catalog.pg_constraint pk ON pk.conrelid = pa.attrelid AND pk.contype = 'n'
                                                   AND pk.conkey = ARRAY[pa.attnum]
                   WHERE i.inhrelid = k.conrelid AND pk.convalidated AND NOT pk.connoinherit) AS parent_gives_valid
    FROM pg_catalog.pg_constraint k
    JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
    WHERE k.contype = 'n'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
      AND c.relpersistence <> 't'
)
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid AS classid,
       k.oid AS objid,
       'CONSTRAINT'::text AS kind,
       k.nspname::text AS schema,
       (k.relname || ' ' || k.conname)::text AS name,
       NULL::text AS owner,
       CASE WHEN k.convalidated AND (k.conislocal OR k.parent_gives_valid) THEN 'pre-data'
            ELSE 'post-data' END::text AS section,
       CASE WHEN k.convalidated AND (k.conislocal OR k.parent_gives_valid) THEN NULL
            WHEN k.convalidated
            THEN 'ALTER ' || CASE WHEN k.relkind = 'f' THEN 'FOREIGN ' ELSE '' END || 'TABLE ' || k.qname
                 || ' VALIDATE CONSTRAINT ' || pg_catalog.quote_ident(k.conname) || ';'
            WHEN k.conislocal
            THEN 'ALTER ' || CASE WHEN k.relkind = 'f' THEN 'FOREIGN ' ELSE '' END || 'TABLE ' || k.qname
                 || ' ADD CONSTRAINT ' || pg_catalog.quote_ident(k.conname) || ' '
                 || pg_catalog.pg_get_constraintdef(k.oid) || ';'
       END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       k.conrelid AS table_oid
FROM k
ORDER BY k.oid
