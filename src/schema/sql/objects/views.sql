-- Views and materialized views (relkind v, m) outside the system schemas, PostgreSQL 13 and later (per-column
-- compression, 14+, is read through to_jsonb, NULL where the column does not exist). Rows:
--   VIEW (pre-data): CREATE VIEW s.v [WITH (options)] AS <pg_get_viewdef> [WITH CASCADED|LOCAL CHECK OPTION];
--   MATERIALIZED VIEW (pre-data): CREATE MATERIALIZED VIEW s.v USING am [WITH (options)] AS <query> WITH NO DATA;
--     then ALTER TABLE ONLY statements for per-column statistics targets, storage, compression and attoptions.
--   MATERIALIZED VIEW DATA (post-data), a second row of a populated materialized view: REFRESH MATERIALIZED VIEW s.v;
-- Column defaults of views are pg_attrdef rows (defaults.sql). A view in a dependency loop (with a function
-- that returns its row type) is split by the engine: a stand-in from dummy_views.sql, then this statement as
-- CREATE OR REPLACE VIEW (kind VIEW DEFINITION).
WITH rel AS (
    SELECT c.oid, c.relname, n.nspname, c.relkind, c.relam, c.reloptions, c.reltoastrelid, c.relowner, c.relacl,
           c.relispopulated, c.reltablespace,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm')
      AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
),
v AS (
    SELECT r.*,
           (SELECT string_agg(o, ', ')
              FROM (SELECT pg_catalog.quote_ident(x.option_name) || '=' || pg_catalog.quote_literal(x.option_value) AS o
                      FROM pg_catalog.pg_options_to_table(r.reloptions) x
                     WHERE x.option_name <> 'check_option'
                    UNION ALL
                    SELECT 'toast.' || pg_catalog.quote_ident(x.option_name) || '=' || pg_catalog.quote_literal(x.option_value)
                      FROM pg_catalog.pg_class tc, pg_catalog.pg_options_to_table(tc.reloptions) x
                     WHERE tc.oid = r.reltoastrelid) opts) AS withopts,
           (SELECT upper(x.option_value) FROM pg_catalog.pg_options_to_table(r.reloptions) x
             WHERE x.option_name = 'check_option') AS check_option,
           (SELECT pg_catalog.quote_ident(am.amname) FROM pg_catalog.pg_am am WHERE am.oid = r.relam) AS amname,
           pg_catalog.rtrim(pg_catalog.pg_get_viewdef(r.oid), ';') AS def,
           (SELECT string_agg(
                     CASE WHEN a.attstattarget >= 0
                          THEN 'ALTER TABLE ONLY ' || r.qname || ' ALTER COLUMN ' || pg_catalog.quote_ident(a.attname)
                               || ' SET STATISTICS ' || a.attstattarget || ';' || chr(10) ELSE '' END
                     || CASE WHEN a.attstorage <> t.typstorage
                             THEN 'ALTER TABLE ONLY ' || r.qname || ' ALTER COLUMN ' || pg_catalog.quote_ident(a.attname)
                                  || ' SET STORAGE '
                                  || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                                       WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END || ';' || chr(10)
                             ELSE '' END
                     || CASE WHEN coalesce(pg_catalog.to_jsonb(a) ->> 'attcompression', '') <> ''
                             THEN 'ALTER TABLE ONLY ' || r.qname || ' ALTER COLUMN ' || pg_catalog.quote_ident(a.attname)
                                  || ' SET COMPRESSION '
                                  || CASE pg_catalog.to_jsonb(a) ->> 'attcompression' WHEN 'p' THEN 'pglz' ELSE 'lz4' END
                                  || ';' || chr(10)
                             ELSE '' END
                     -- Less `pg_attver`, as tables.sql says.
                     || CASE WHEN a.attoptions IS NOT NULL
                                  AND EXISTS (SELECT FROM pg_catalog.unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%')
                             THEN 'ALTER TABLE ONLY ' || r.qname || ' ALTER COLUMN ' || pg_catalog.quote_ident(a.attname)
                                  || ' SET ('
                                  || (SELECT string_agg(pg_catalog.quote_ident(x.option_name) || '='
                                                        || pg_catalog.quote_literal(x.option_value), ', ')
                                        FROM pg_catalog.pg_options_to_table(a.attoptions) x
                                        WHERE x.option_name <> 'pg_attver')
                                  || ');' || chr(10)
                             ELSE '' END, '' ORDER BY a.attnum)
              FROM pg_catalog.pg_attribute a
              JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND r.relkind = 'm') AS column_alters
    FROM rel r
)
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS classid,
       v.oid AS objid,
       CASE v.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END::text AS kind,
       v.nspname::text AS schema,
       v.relname::text AS name,
       pg_catalog.pg_get_userbyid(v.relowner)::text AS owner,
       'pre-data'::text AS section,
       CASE WHEN v.relkind = 'v'
            THEN 'CREATE VIEW ' || v.qname
                 || CASE WHEN v.withopts IS NOT NULL THEN ' WITH (' || v.withopts || ')' ELSE '' END
                 || ' AS' || chr(10) || v.def
                 || CASE WHEN v.check_option IS NOT NULL
                         THEN chr(10) || '  WITH ' || v.check_option || ' CHECK OPTION' ELSE '' END || ';'
            ELSE 'CREATE MATERIALIZED VIEW ' || v.qname
                 || CASE WHEN v.amname IS NOT NULL THEN ' USING ' || v.amname ELSE '' END
                 || CASE WHEN v.withopts IS NOT NULL THEN ' WITH (' || v.withopts || ')' ELSE '' END
                 || ' AS' || chr(10) || v.def || chr(10) || '  WITH NO DATA;'
                 || CASE WHEN v.column_alters <> '' THEN chr(10) || rtrim(v.column_alters, chr(10)) ELSE '' END
       END AS "create",
       v.relacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = v.oid AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('r', v.relowner))::text[] AS acl_default,
       pg_catalog.pg_relation_size(v.oid) AS size,
       v.oid AS table_oid,
       (SELECT ts.spcname::text FROM pg_catalog.pg_tablespace ts WHERE ts.oid = v.reltablespace) AS tablespace
FROM v
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid,
       v.oid,
       'MATERIALIZED VIEW DATA',
       v.nspname::text,
       v.relname::text,
       NULL,
       'post-data',
       'REFRESH MATERIALIZED VIEW ' || v.qname || ';',
       NULL,
       NULL,
       pg_catalog.pg_relation_size(v.oid),
       v.oid,
       NULL
FROM v
WHERE v.relkind = 'm' AND v.relispopulated
ORDER BY 2, 3
