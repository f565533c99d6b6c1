-- Tables: ordinary, unlogged and partitioned tables (relkind r, p) outside the system schemas, as pg_dump's
-- dumpTableSchema makes them, for PostgreSQL 13 and later. Per-column compression (attcompression, 14+) is read
-- through to_jsonb, which gives NULL where the column does not exist, so one query serves 13 too.
-- Rows:
--   kind TABLE (pre-data): CREATE [UNLOGGED] TABLE s.t [OF type] (columns) [INHERITS (...)] [PARTITION BY ...]
--     [USING am] [WITH (...)] (an unlogged partitioned table, which 18 rejects, says UNLOGGED in a DO block that
--     asks the server's version), its tablespace in `tablespace` when not the database's default (the restore
--     sets default_tablespace around the statements); then ALTER TABLE ONLY statements for what CREATE TABLE cannot say: NOT NULL on
--     inherited-only columns (before 18), DROP DEFAULT where a parent's default must not be inherited,
--     statistics targets, storage, compression, attoptions, REPLICA IDENTITY FULL | NOTHING, FORCE ROW LEVEL
--     SECURITY; and ALTER SEQUENCE for an identity sequence whose type or (15+) persistence differs from the
--     table's.
--     Columns: the type (format_type), COLLATE when not the type's, GENERATED ALWAYS AS (expr) STORED | VIRTUAL,
--     identity with its sequence's exact name and options, NOT NULL. No defaults (defaults.sql), no CHECK
--     constraints (check_constraints.sql), except that a partition's inherited CHECK constraints are written into
--     its CREATE TABLE because ATTACH PARTITION requires them (check_constraints.sql returns those with create
--     NULL).
--     NOT NULL: before 18 a column flag (attnotnull), written as NOT NULL on every printed column that has it.
--     From 18 on a constraint (pg_constraint, contype 'n') with a name, NO INHERIT, NOT VALID and its own
--     conislocal/coninhcount, written as pg_dump 18 writes it: `[CONSTRAINT name] NOT NULL [NO INHERIT]`, the
--     name left out when it is the one the server would choose again (<table>_<column>_not_null, held by no
--     other constraint of the schema); only when the table declares it itself (conislocal), or it is a
--     partition and its parent gives it validly (ATTACH PARTITION requires it). On a column that CREATE TABLE
--     does not print (inherited only) it is the table constraint `[CONSTRAINT name] NOT NULL col`. NOT VALID
--     ones, and valid ones that only NOT VALID parents give, are not written here: not_null_constraints.sql
--     adds or validates them after the data.
--     Partitions are created standalone with all their columns, in their own order, NOT NULL included.
--     Inheritance children are created with INHERITS (parents) and only their local columns, as pg_dump does:
--     this puts the inherited columns first. When the child's real column order differs from that and all of
--     its columns are local and it has no inherited CHECK constraint and no valid NOT NULL constraint it only
--     inherits (18), it is created standalone with all its columns in order, then ALTER TABLE child INHERIT
--     parent (which keeps the order and gives the same attislocal/attinhcount and, for what it declares
--     itself, conislocal/coninhcount). Otherwise, when the order differs, the create starts with a comment
--     line "-- pgsafe: column order differs from INHERITS" and the order is lost (pg_upgrade's trick is
--     needed).
--   kind TABLE ATTACH (pre-data), a second row of a partition: ALTER TABLE ONLY parent ATTACH PARTITION child
--     FOR VALUES ... | DEFAULT;
-- Not here: ENABLE ROW LEVEL SECURITY (the ROW SECURITY entry, policies), REPLICA IDENTITY USING INDEX and
-- CLUSTER ON (indexes), column defaults, CHECK/other constraints, column privileges and comments (engine).
WITH rel AS (
    SELECT c.oid, c.relname, n.nspname, c.relkind, c.relpersistence, c.relispartition, c.reloftype, c.relam,
           c.reloptions, c.reltoastrelid, c.relowner, c.relacl, c.relreplident, c.relforcerowsecurity,
           c.relpartbound,
           (SELECT ts.spcname FROM pg_catalog.pg_tablespace ts WHERE ts.oid = c.reltablespace) AS tablespace,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
),
-- Every live column, with what its parents (inheritance or partitioning) say about it.
col AS (
    SELECT r.oid AS relid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.attislocal,
           a.attinhcount, a.attidentity, a.attgenerated, a.attstattarget, a.attstorage,
           coalesce(pg_catalog.to_jsonb(a) ->> 'attcompression', '') AS attcompression,
           -- The column's options, less `pg_attver`, which some servers keep on every column themselves
           -- (Debian's PostgreSQL 15.20): it cannot be set or reset, pg_dump leaves it out, and another
           -- server refuses it.
           NULLIF(ARRAY(SELECT o FROM pg_catalog.unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'), '{}') AS attoptions,
           a.attcollation, a.atthasdef, t.typstorage, t.typcollation,
           pg_catalog.quote_ident(a.attname) AS qatt,
           (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
             WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) AS defexpr,
           -- The column's NOT NULL constraint (18+; no such row before).
           nn.oid AS nn_oid, coalesce(nn.convalidated, false) AS nn_valid, nn.conislocal AS nn_islocal,
           -- `[CONSTRAINT name] NOT NULL [NO INHERIT]`: the name unless the server would choose it again.
           CASE WHEN nn.oid IS NULL
                     OR (nn.conname = r.relname || '_' || a.attname || '_not_null'
                         AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint o
                                          WHERE o.conname = nn.conname AND o.connamespace = nn.connamespace
                                            AND o.oid <> nn.oid AND o.conislocal))
                THEN '' ELSE 'CONSTRAINT ' || pg_catalog.quote_ident(nn.conname) || ' ' END
           || 'NOT NULL' AS nn_clause,
           CASE WHEN nn.connoinherit THEN ' NO INHERIT' ELSE '' END AS nn_noinherit,
           p.par_notnull, p.par_nn_valid, p.par_hasdef, p.par_gen_exprs, p.par_storages, p.par_compressions
    FROM rel r
    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n'
                                         AND nn.conkey = ARRAY[a.attnum]
    LEFT JOIN LATERAL (
        SELECT bool_or(pa.attnotnull) AS par_notnull,
               -- A parent that gives the column a valid NOT NULL constraint (18+).
               bool_or(pn.convalidated AND NOT pn.connoinherit) AS par_nn_valid,
               bool_or(pa.atthasdef AND pa.attgenerated = '') AS par_hasdef,
               array_agg(pg_catalog.pg_get_expr(pd.adbin, pd.adrelid)) FILTER (WHERE pa.attgenerated <> '')
                   AS par_gen_exprs,
               array_agg(pa.attstorage::text) AS par_storages,
               array_agg(coalesce(pg_catalog.to_jsonb(pa) ->> 'attcompression', '')) AS par_compressions
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attname = a.attname
                                       AND NOT pa.attisdropped
        LEFT JOIN pg_catalog.pg_attrdef pd ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum
        LEFT JOIN pg_catalog.pg_constraint pn ON pn.conrelid = pa.attrelid AND pn.contype = 'n'
                                             AND pn.conkey = ARRAY[pa.attnum]
        WHERE i.inhrelid = r.oid AND a.attinhcount > 0
    ) p ON true
),
-- The identity sequence of an identity column (an 'i' dependency of the sequence on the column), looked up
-- for each identity column through pg_depend's index (a join with all identity sequences at once was
-- planned as a nested loop over every column, quadratic in the number of tables). From 17 on a partition's
-- identity column uses its parent's sequence and gets it from ATTACH PARTITION.
colid AS (
    SELECT c.*, id.seqtypid, id.seqstart, id.seqincrement, id.seqmin, id.seqmax, id.seqcache, id.seqcycle, id.qseq,
           id.seqpersistence
    FROM col c
    LEFT JOIN LATERAL (
        SELECT s.seqtypid, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
               pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(sc.relname) AS qseq,
               sc.relpersistence AS seqpersistence
        FROM pg_catalog.pg_depend dep
        JOIN pg_catalog.pg_class sc ON sc.oid = dep.objid AND sc.relkind = 'S'
        JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace
        JOIN pg_catalog.pg_sequence s ON s.seqrelid = sc.oid
        WHERE dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND dep.refobjid = c.relid AND dep.refobjsubid = c.attnum
          AND dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.deptype = 'i'
          AND c.attidentity <> ''
    ) id ON true
),
coldef AS (
    SELECT c.*, r.relispartition, r.reloftype, r.qname,
           -- pg_dump prints a column in CREATE TABLE when it is local, and every column of a partition.
           (c.attislocal OR r.relispartition) AS printed,
           -- Is the column's NOT NULL written in CREATE TABLE? Before 18 (no constraint row): on every printed
           -- column that has it, and on the others when no parent gives it. From 18 on: a valid constraint
           -- the table declares itself, and a partition's valid one that its parent gives validly (ATTACH
           -- PARTITION requires it). One that only NOT VALID parents give is validated after them instead
           -- (not_null_constraints.sql), which keeps it inherited-only.
           CASE WHEN c.nn_oid IS NULL
                THEN c.attnotnull AND (c.attislocal OR r.relispartition OR NOT coalesce(c.par_notnull, false))
                ELSE c.nn_valid AND (c.nn_islocal OR (r.relispartition AND coalesce(c.par_nn_valid, false)))
           END AS nn_print,
           -- A valid NOT NULL constraint INHERITS or ATTACH PARTITION gives (18+).
           c.nn_valid AND NOT c.nn_islocal AND coalesce(c.par_nn_valid, false) AS nn_from_parent,
           CASE WHEN c.attcollation <> 0 AND c.attcollation <> c.typcollation THEN
               (SELECT ' COLLATE ' || pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                  FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                 WHERE co.oid = c.attcollation)
               ELSE '' END AS collate_clause,
           CASE
             -- An inheritance child inherits its parent's generation expression; it says its own only when it
             -- differs (possible from 16 on).
             WHEN c.attgenerated <> '' AND c.defexpr IS NOT NULL
                  AND (r.relispartition OR c.attinhcount = 0
                       OR NOT (c.defexpr = ANY (coalesce(c.par_gen_exprs, '{}'))))
             THEN ' GENERATED ALWAYS AS (' || c.defexpr || ')'
                  || CASE c.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END
             WHEN c.attidentity IN ('a', 'd') AND c.qseq IS NOT NULL
             THEN ' GENERATED ' || CASE c.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END
                  || ' AS IDENTITY (SEQUENCE NAME ' || c.qseq
                  || ' START WITH ' || c.seqstart
                  || ' INCREMENT BY ' || c.seqincrement
                  || CASE WHEN c.seqmin = CASE WHEN c.seqincrement > 0 THEN 1
                                                WHEN c.seqtypid = 'pg_catalog.int2'::pg_catalog.regtype THEN -32768
                                                WHEN c.seqtypid = 'pg_catalog.int4'::pg_catalog.regtype THEN -2147483648
                                                ELSE -9223372036854775808 END
                          AND c.seqtypid = c.atttypid
                          THEN ' NO MINVALUE' ELSE ' MINVALUE ' || c.seqmin END
                  || CASE WHEN c.seqmax = CASE WHEN c.seqincrement < 0 THEN -1
                                                WHEN c.seqtypid = 'pg_catalog.int2'::pg_catalog.regtype THEN 32767
                                                WHEN c.seqtypid = 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647
                                                ELSE 9223372036854775807 END
                          AND c.seqtypid = c.atttypid
                          THEN ' NO MAXVALUE' ELSE ' MAXVALUE ' || c.seqmax END
                  || ' CACHE ' || c.seqcache
                  || CASE WHEN c.seqcycle THEN ' CYCLE' ELSE '' END || ')'
             ELSE '' END AS gen_clause,
           CASE WHEN c.attgenerated <> '' AND c.defexpr IS NOT NULL
                THEN ' GENERATED ALWAYS AS (' || c.defexpr || ')'
                     || CASE c.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END
           END AS gen_clause_full,
           -- The identity sequence's type follows the column's; a sequence changed to another type keeps it.
           CASE WHEN c.attidentity IN ('a', 'd') AND c.qseq IS NOT NULL AND c.seqtypid <> c.atttypid
                THEN 'ALTER SEQUENCE ' || c.qseq || ' AS ' || pg_catalog.format_type(c.seqtypid, NULL)
                     || ' MINVALUE ' || c.seqmin || ' MAXVALUE ' || c.seqmax || ';' || chr(10)
                ELSE '' END
           -- So does its persistence the table's (from 15 on, when sequences can be unlogged); one set apart
           -- with ALTER SEQUENCE keeps it. Before 15 every sequence is logged, an unlogged table's too.
           || CASE WHEN c.attidentity IN ('a', 'd') AND c.qseq IS NOT NULL AND c.seqpersistence <> r.relpersistence
                        AND pg_catalog.current_setting('server_version_num')::int >= 150000
                   THEN 'ALTER SEQUENCE ' || c.qseq
                        || CASE c.seqpersistence WHEN 'u' THEN ' SET UNLOGGED;' ELSE ' SET LOGGED;' END || chr(10)
                   ELSE '' END AS ident_alter
    FROM colid c
    JOIN rel r ON r.oid = c.relid
),
-- What each table's columns say, one row per table: the column lists and ALTER statements are aggregated
-- here, grouped by table, never by a subquery per table (a correlated scan of coldef for each table made
-- this query quadratic in the number of tables).
colagg AS (
    SELECT d.relid,
           -- Column definitions (typed tables: only the columns with options).
           string_agg(CASE WHEN d.reloftype <> 0
                           THEN '    ' || d.qatt || ' WITH OPTIONS ' || d.nn_clause || d.nn_noinherit
                           ELSE '    ' || d.qatt || ' ' || pg_catalog.format_type(d.atttypid, d.atttypmod)
                                || d.collate_clause || d.gen_clause
                                || CASE WHEN d.nn_print THEN ' ' || d.nn_clause || d.nn_noinherit ELSE '' END
                      END, ',' || chr(10) ORDER BY d.attnum)
               FILTER (WHERE d.printed AND (d.reloftype = 0 OR d.nn_print)) AS columns,
           -- NOT NULL constraints (18+) on columns CREATE TABLE does not print.
           string_agg('    ' || d.nn_clause || ' ' || d.qatt || d.nn_noinherit, ',' || chr(10) ORDER BY d.attnum)
               FILTER (WHERE NOT d.printed AND d.nn_print AND d.nn_oid IS NOT NULL) AS notnulls,
           -- The same, every column with its own generation expression, for an inheritance child created
           -- standalone and then attached with ALTER TABLE ... INHERIT (see below).
           string_agg('    ' || d.qatt || ' ' || pg_catalog.format_type(d.atttypid, d.atttypmod)
                      || d.collate_clause || coalesce(d.gen_clause_full, d.gen_clause)
                      || CASE WHEN d.nn_print THEN ' ' || d.nn_clause || d.nn_noinherit ELSE '' END,
                      ',' || chr(10) ORDER BY d.attnum) AS columns_full,
           -- Are all columns local, and is no valid NOT NULL constraint only inherited? (can_inherit_later)
           bool_and(d.attislocal) AND NOT bool_or(d.nn_from_parent) AS all_local,
           -- The real column order, and the table's own (not inherited) columns in order.
           array_agg(d.attname ORDER BY d.attnum) AS attnames,
           array_agg(d.attname ORDER BY d.attnum) FILTER (WHERE d.attinhcount = 0) AS own_attnames,
           string_agg(d.ident_alter
                      -- NOT NULL that CREATE TABLE did not say and no parent gives (before 18).
                      || CASE WHEN NOT d.printed AND d.nn_print AND d.nn_oid IS NULL
                              THEN 'ALTER TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET NOT NULL;' || chr(10)
                              ELSE '' END
                      -- INHERITS copies the parents' defaults: drop one the child does not have.
                      || CASE WHEN NOT d.relispartition AND d.attinhcount > 0 AND NOT d.atthasdef
                                   AND coalesce(d.par_hasdef, false)
                              THEN 'ALTER TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' DROP DEFAULT;' || chr(10)
                              ELSE '' END
                      || CASE WHEN d.attstattarget >= 0
                              THEN 'ALTER TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET STATISTICS '
                                   || d.attstattarget || ';' || chr(10)
                              ELSE '' END
                      -- Storage and compression are inherited from the parents by INHERITS.
                      || CASE WHEN d.attstorage <> d.typstorage
                                   OR (NOT d.relispartition AND d.attstorage::text <> ANY (coalesce(d.par_storages, '{}')))
                              THEN 'ALTER TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET STORAGE '
                                   || CASE d.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                                        WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END || ';' || chr(10)
                              ELSE '' END
                      || CASE WHEN d.attcompression <> ''
                                   OR (NOT d.relispartition AND d.attcompression::text <> ANY (coalesce(d.par_compressions, '{}')))
                              THEN 'ALTER TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET COMPRESSION '
                                   || CASE d.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' ELSE 'default' END
                                   || ';' || chr(10)
                              ELSE '' END
                      || CASE WHEN d.attoptions IS NOT NULL
                              THEN 'ALTER TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET ('
                                   || (SELECT string_agg(pg_catalog.quote_ident(x.option_name) || '='
                                                         || pg_catalog.quote_literal(x.option_value), ', ')
                                         FROM pg_catalog.pg_options_to_table(d.attoptions) x)
                                   || ');' || chr(10)
                              ELSE '' END, '' ORDER BY d.attnum) AS column_alters
    FROM coldef d
    GROUP BY d.relid
),
tab AS (
    SELECT r.*, a.columns, a.notnulls, a.columns_full, a.column_alters,
           (SELECT string_agg('ALTER TABLE ' || r.qname || ' INHERIT ' || pg_catalog.quote_ident(pn.nspname) || '.'
                              || pg_catalog.quote_ident(pc.relname) || ';' || chr(10), '' ORDER BY i.inhseqno)
              FROM pg_catalog.pg_inherits i
              JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
              JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE i.inhrelid = r.oid AND NOT r.relispartition) AS inherit_alters,
           -- Can the child be created standalone and attached with ALTER TABLE INHERIT? Only when all of its
           -- columns are local (INHERIT leaves attislocal true) and it has no inherited CHECK constraint and no
           -- valid NOT NULL constraint it only inherits (INHERIT would need them created first, and would
           -- leave them local).
           coalesce(a.all_local, true)
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k
                            WHERE k.conrelid = r.oid AND k.contype = 'c' AND k.coninhcount > 0) AS can_inherit_later,
           -- A partition's inherited CHECK constraints must exist before ATTACH PARTITION.
           (SELECT string_agg('    CONSTRAINT ' || pg_catalog.quote_ident(k.conname) || ' '
                              || pg_catalog.pg_get_constraintdef(k.oid), ',' || chr(10) ORDER BY k.conname)
              FROM pg_catalog.pg_constraint k
             WHERE k.conrelid = r.oid AND k.contype = 'c' AND k.coninhcount > 0 AND r.relispartition)
               AS part_checks,
           (SELECT string_agg(pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(pc.relname),
                              ', ' ORDER BY i.inhseqno)
              FROM pg_catalog.pg_inherits i
              JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
              JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE i.inhrelid = r.oid AND NOT r.relispartition) AS inherits,
           (SELECT pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(pc.relname)
              FROM pg_catalog.pg_inherits i
              JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
              JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE i.inhrelid = r.oid AND r.relispartition) AS partition_parent,
           (SELECT string_agg(o, ', ')
              FROM (SELECT pg_catalog.quote_ident(x.option_name) || '=' || pg_catalog.quote_literal(x.option_value) AS o
                      FROM pg_catalog.pg_options_to_table(r.reloptions) x
                    UNION ALL
                    SELECT 'toast.' || pg_catalog.quote_ident(x.option_name) || '=' || pg_catalog.quote_literal(x.option_value)
                      FROM pg_catalog.pg_class tc, pg_catalog.pg_options_to_table(tc.reloptions) x
                     WHERE tc.oid = r.reltoastrelid) opts) AS withopts,
           (SELECT pg_catalog.quote_ident(am.amname) FROM pg_catalog.pg_am am WHERE am.oid = r.relam) AS amname,
           (SELECT pg_catalog.format_type(r.reloftype, NULL) WHERE r.reloftype <> 0) AS oftype,
           -- Does INHERITS give the child's real column order? (Parents' columns first, merged by name, in
           -- inhseqno order, then the child's own columns.)
           a.attnames
             IS DISTINCT FROM
           (SELECT array_agg(p.attname ORDER BY p.pos)
              FROM (SELECT DISTINCT ON (pa.attname) pa.attname, i.inhseqno::int8 * 100000 + pa.attnum AS pos
                      FROM pg_catalog.pg_inherits i
                      JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attnum > 0
                                                     AND NOT pa.attisdropped
                     WHERE i.inhrelid = r.oid
                     ORDER BY pa.attname, i.inhseqno, pa.attnum) p) || a.own_attnames
             AS order_differs_raw
    FROM rel r
    LEFT JOIN colagg a ON a.relid = r.oid
)
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS classid,
       t.oid AS objid,
       'TABLE'::text AS kind,
       t.nspname::text AS schema,
       t.relname::text AS name,
       pg_catalog.pg_get_userbyid(t.relowner)::text AS owner,
       'pre-data'::text AS section,
       CASE WHEN t.inherits IS NOT NULL AND t.order_differs_raw AND NOT t.can_inherit_later
            THEN '-- pgsafe: column order differs from INHERITS' || chr(10) ELSE '' END
       || CASE WHEN t.relkind = 'p' AND t.relpersistence = 'u'
               -- UNLOGGED means nothing on a partitioned table, and 18 rejects it: said only where it is taken.
               THEN 'DO $pgsafe_unlogged$BEGIN EXECUTE CASE WHEN pg_catalog.current_setting(''server_version_num'')::int'
                    || ' < 180000 THEN ''CREATE UNLOGGED '' ELSE ''CREATE '' END || '
                    || pg_catalog.quote_literal(b.body) || '; END$pgsafe_unlogged$;'
               ELSE 'CREATE ' || CASE WHEN t.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END || b.body || ';' END
       || chr(10)
       || CASE WHEN t.inherits IS NOT NULL AND t.order_differs_raw AND t.can_inherit_later
               THEN t.inherit_alters ELSE '' END
       || coalesce(t.column_alters, '')
       || CASE t.relreplident WHEN 'f' THEN 'ALTER TABLE ONLY ' || t.qname || ' REPLICA IDENTITY FULL;' || chr(10)
                              WHEN 'n' THEN 'ALTER TABLE ONLY ' || t.qname || ' REPLICA IDENTITY NOTHING;' || chr(10)
                              ELSE '' END
       || CASE WHEN t.relforcerowsecurity
               THEN 'ALTER TABLE ONLY ' || t.qname || ' FORCE ROW LEVEL SECURITY;' || chr(10) ELSE '' END
       AS "create",
       t.relacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = t.oid AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('r', t.relowner))::text[] AS acl_default,
       pg_catalog.pg_relation_size(t.oid) AS size,
       t.oid AS table_oid,
       t.tablespace::text AS tablespace
FROM tab t
CROSS JOIN LATERAL (
    SELECT 'TABLE ' || t.qname
           || CASE WHEN t.oftype IS NOT NULL THEN ' OF ' || t.oftype ELSE '' END
           || CASE WHEN t.oftype IS NOT NULL AND t.columns IS NULL AND t.notnulls IS NULL AND t.part_checks IS NULL
                   THEN ''
                   WHEN t.inherits IS NOT NULL AND t.order_differs_raw AND t.can_inherit_later
                   THEN ' (' || chr(10) || t.columns_full || chr(10) || ')'
                   ELSE ' (' || chr(10)
                        || concat_ws(',' || chr(10), t.columns, t.notnulls, t.part_checks)
                        || CASE WHEN t.columns IS NULL AND t.notnulls IS NULL AND t.part_checks IS NULL
                                THEN '' ELSE chr(10) END || ')'
              END
           || CASE WHEN t.inherits IS NOT NULL AND NOT (t.order_differs_raw AND t.can_inherit_later)
                   THEN chr(10) || 'INHERITS (' || t.inherits || ')' ELSE '' END
           || CASE WHEN t.relkind = 'p' THEN chr(10) || 'PARTITION BY ' || pg_catalog.pg_get_partkeydef(t.oid) ELSE '' END
           || CASE WHEN t.amname IS NOT NULL THEN chr(10) || 'USING ' || t.amname ELSE '' END
           || CASE WHEN t.withopts IS NOT NULL THEN chr(10) || 'WITH (' || t.withopts || ')' ELSE '' END AS body
) AS b
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid,
       t.oid,
       'TABLE ATTACH',
       t.nspname::text,
       t.relname::text,
       NULL,
       'pre-data',
       'ALTER TABLE ONLY ' || t.partition_parent || ' ATTACH PARTITION ' || t.qname || ' '
       || pg_catalog.pg_get_expr(t.relpartbound, t.oid) || ';',
       NULL,
       NULL,
       NULL,
       t.oid,
       NULL
FROM tab t
WHERE t.relispartition AND t.partition_parent IS NOT NULL
ORDER BY 2, 3
