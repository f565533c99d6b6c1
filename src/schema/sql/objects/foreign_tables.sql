-- Foreign tables (relkind f) outside the system schemas, PostgreSQL 13 and later. Rows:
--   FOREIGN TABLE (pre-data): CREATE FOREIGN TABLE s.t (c type [COLLATE x] [GENERATED ALWAYS AS (e) STORED]
--     [[CONSTRAINT n] NOT NULL [NO INHERIT]], ...) [INHERITS (...)] SERVER srv [OPTIONS (...)]; then ALTER
--     FOREIGN TABLE ONLY statements for column OPTIONS, NOT NULL on inherited-only columns (before 18),
--     DROP DEFAULT where a parent's default must not be inherited, statistics targets, storage and
--     attoptions. The same column and NOT NULL rules as tables.sql: local columns only for inheritance
--     children, every column for partitions, whose inherited CHECK constraints are written into the CREATE
--     too (ATTACH PARTITION requires them; check_constraints.sql returns them with create NULL); from 18 on,
--     NOT NULL constraints with their names, NOT VALID ones after the data (not_null_constraints.sql).
--   TABLE ATTACH (pre-data), a second row of a foreign partition: ALTER TABLE ONLY parent ATTACH PARTITION s.t
--     FOR VALUES ...;
-- No defaults (defaults.sql), no CHECK constraints of its own (check_constraints.sql).
WITH rel AS (
    SELECT c.oid, c.relname, n.nspname, c.relispartition, c.relowner, c.relacl, c.relpartbound,
           ft.ftoptions, fs.srvname,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
    JOIN pg_catalog.pg_foreign_server fs ON fs.oid = ft.ftserver
    WHERE c.relkind = 'f'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
),
col AS (
    SELECT r.oid AS relid, r.relispartition, r.qname, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull,
           a.attislocal, a.attinhcount, a.attgenerated, a.attstattarget, a.attstorage,
           -- The column's options, less `pg_attver`, which some servers keep on every column themselves
           -- (see tables.sql): it cannot be set or reset, pg_dump leaves it out, and another
           -- server refuses it.
           NULLIF(ARRAY(SELECT o FROM pg_catalog.unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'), '{}') AS attoptions,
           a.attfdwoptions, a.attcollation, a.atthasdef, t.typstorage, t.typcollation,
           pg_catalog.quote_ident(a.attname) AS qatt,
           (a.attislocal OR r.relispartition) AS printed,
           (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
             WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) AS defexpr,
           -- The column's NOT NULL constraint (18+), written as tables.sql writes it.
           nn.oid AS nn_oid,
           CASE WHEN nn.oid IS NULL
                THEN a.attnotnull AND (a.attislocal OR r.relispartition OR NOT coalesce(p.par_notnull, false))
                ELSE nn.convalidated AND (nn.conislocal OR (r.relispartition AND coalesce(p.par_nn_valid, false)))
           END AS nn_print,
           CASE WHEN nn.oid IS NULL
                     OR (nn.conname = r.relname || '_' || a.attname || '_not_null'
                         AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint o
                                          WHERE o.conname = nn.conname AND o.connamespace = nn.connamespace
                                            AND o.oid <> nn.oid AND o.conislocal))
                THEN '' ELSE 'CONSTRAINT ' || pg_catalog.quote_ident(nn.conname) || ' ' END
           || 'NOT NULL' AS nn_clause,
           CASE WHEN nn.connoinherit THEN ' NO INHERIT' ELSE '' END AS nn_noinherit,
           p.par_hasdef, p.par_gen_exprs, p.par_storages
    FROM rel r
    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n'
                                         AND nn.conkey = ARRAY[a.attnum]
    LEFT JOIN LATERAL (
        SELECT bool_or(pa.attnotnull) AS par_notnull,
               bool_or(pn.convalidated AND NOT pn.connoinherit) AS par_nn_valid,
               bool_or(pa.atthasdef AND pa.attgenerated = '') AS par_hasdef,
               array_agg(pg_catalog.pg_get_expr(pd.adbin, pd.adrelid)) FILTER (WHERE pa.attgenerated <> '')
                   AS par_gen_exprs,
               array_agg(pa.attstorage::text) AS par_storages
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attname = a.attname
                                       AND NOT pa.attisdropped
        LEFT JOIN pg_catalog.pg_attrdef pd ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum
        LEFT JOIN pg_catalog.pg_constraint pn ON pn.conrelid = pa.attrelid AND pn.contype = 'n'
                                             AND pn.conkey = ARRAY[pa.attnum]
        WHERE i.inhrelid = r.oid AND a.attinhcount > 0
    ) p ON true
),
-- What each foreign table's columns say, one row per table, grouped by table (a subquery over col for each
-- table would be quadratic in the number of tables).
colagg AS (
    SELECT d.relid,
           string_agg('    ' || d.qatt || ' ' || pg_catalog.format_type(d.atttypid, d.atttypmod)
                      || CASE WHEN d.attcollation <> 0 AND d.attcollation <> d.typcollation THEN
                             (SELECT ' COLLATE ' || pg_catalog.quote_ident(cn.nspname) || '.'
                                     || pg_catalog.quote_ident(co.collname)
                                FROM pg_catalog.pg_collation co
                                JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                               WHERE co.oid = d.attcollation)
                             ELSE '' END
                      || CASE WHEN d.attgenerated <> '' AND d.defexpr IS NOT NULL
                                   AND (d.relispartition OR d.attinhcount = 0
                                        OR NOT (d.defexpr = ANY (coalesce(d.par_gen_exprs, '{}'))))
                              THEN ' GENERATED ALWAYS AS (' || d.defexpr || ')'
                                   || CASE d.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END
                              ELSE '' END
                      || CASE WHEN d.nn_print THEN ' ' || d.nn_clause || d.nn_noinherit ELSE '' END,
                      ',' || chr(10) ORDER BY d.attnum) FILTER (WHERE d.printed) AS columns,
           -- NOT NULL constraints (18+) on columns CREATE does not print.
           string_agg('    ' || d.nn_clause || ' ' || d.qatt || d.nn_noinherit, ',' || chr(10) ORDER BY d.attnum)
               FILTER (WHERE NOT d.printed AND d.nn_print AND d.nn_oid IS NOT NULL) AS notnulls,
           string_agg(CASE WHEN d.attfdwoptions IS NOT NULL
                           THEN 'ALTER FOREIGN TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' OPTIONS ('
                                || (SELECT string_agg(pg_catalog.quote_ident(x.option_name) || ' '
                                                      || pg_catalog.quote_literal(x.option_value), ', ')
                                      FROM pg_catalog.pg_options_to_table(d.attfdwoptions) x)
                                || ');' || chr(10)
                           ELSE '' END
                      || CASE WHEN NOT d.printed AND d.nn_print AND d.nn_oid IS NULL
                              THEN 'ALTER FOREIGN TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET NOT NULL;' || chr(10)
                              ELSE '' END
                      || CASE WHEN NOT d.relispartition AND d.attinhcount > 0 AND NOT d.atthasdef
                                   AND coalesce(d.par_hasdef, false)
                              THEN 'ALTER FOREIGN TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' DROP DEFAULT;' || chr(10)
                              ELSE '' END
                      || CASE WHEN d.attstattarget >= 0
                              THEN 'ALTER FOREIGN TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET STATISTICS '
                                   || d.attstattarget || ';' || chr(10)
                              ELSE '' END
                      || CASE WHEN d.attstorage <> d.typstorage
                                   OR (NOT d.relispartition AND d.attstorage::text <> ANY (coalesce(d.par_storages, '{}')))
                              THEN 'ALTER FOREIGN TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET STORAGE '
                                   || CASE d.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                                        WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END || ';' || chr(10)
                              ELSE '' END
                      || CASE WHEN d.attoptions IS NOT NULL
                              THEN 'ALTER FOREIGN TABLE ONLY ' || d.qname || ' ALTER COLUMN ' || d.qatt || ' SET ('
                                   || (SELECT string_agg(pg_catalog.quote_ident(x.option_name) || '='
                                                         || pg_catalog.quote_literal(x.option_value), ', ')
                                         FROM pg_catalog.pg_options_to_table(d.attoptions) x)
                                   || ');' || chr(10)
                              ELSE '' END, '' ORDER BY d.attnum) AS column_alters
    FROM col d
    GROUP BY d.relid
),
tab AS (
    SELECT r.*, a.columns, a.notnulls, a.column_alters,
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
           (SELECT string_agg(pg_catalog.quote_ident(x.option_name) || ' ' || pg_catalog.quote_literal(x.option_value),
                              ', ')
              FROM pg_catalog.pg_options_to_table(r.ftoptions) x) AS ftopts
    FROM rel r
    LEFT JOIN colagg a ON a.relid = r.oid
)
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS classid,
       t.oid AS objid,
       'FOREIGN TABLE'::text AS kind,
       t.nspname::text AS schema,
       t.relname::text AS name,
       pg_catalog.pg_get_userbyid(t.relowner)::text AS owner,
       'pre-data'::text AS section,
       'CREATE FOREIGN TABLE ' || t.qname || ' (' || chr(10)
       || concat_ws(',' || chr(10), t.columns, t.notnulls, t.part_checks)
       || CASE WHEN t.columns IS NULL AND t.notnulls IS NULL AND t.part_checks IS NULL THEN '' ELSE chr(10) END || ')'
       || CASE WHEN t.inherits IS NOT NULL THEN chr(10) || 'INHERITS (' || t.inherits || ')' ELSE '' END
       || chr(10) || 'SERVER ' || pg_catalog.quote_ident(t.srvname)
       || CASE WHEN t.ftopts IS NOT NULL THEN chr(10) || 'OPTIONS (' || t.ftopts || ')' ELSE '' END
       || ';' || chr(10) || coalesce(t.column_alters, '') AS "create",
       t.relacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = t.oid AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('r', t.relowner))::text[] AS acl_default,
       NULL::int8 AS size,
       t.oid AS table_oid
FROM tab t
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
       t.oid
FROM tab t
WHERE t.relispartition AND t.partition_parent IS NOT NULL
ORDER BY 2, 3
