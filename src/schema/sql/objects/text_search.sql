-- Text search objects: parsers (kind TEXT SEARCH PARSER), templates (TEXT SEARCH TEMPLATE), dictionaries
-- (TEXT SEARCH DICTIONARY, with their options) and configurations (TEXT SEARCH CONFIGURATION):
-- `CREATE TEXT SEARCH CONFIGURATION s.c (PARSER = s.p);`, which makes a configuration without mappings,
-- then one `ALTER TEXT SEARCH CONFIGURATION s.c ADD MAPPING FOR token WITH d1, d2;` per token type, as
-- pg_dump writes them. Parsers and templates have no owner. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_ts_parser'::regclass::oid AS classid,
       p.oid AS objid,
       'TEXT SEARCH PARSER'::text AS kind,
       n.nspname::text AS schema,
       p.prsname::text AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       format(E'CREATE TEXT SEARCH PARSER %I.%I (\n    START = %s,\n    GETTOKEN = %s,\n    END = %s,\n',
              n.nspname, p.prsname, p.prsstart::pg_catalog.regproc::text, p.prstoken::pg_catalog.regproc::text,
              p.prsend::pg_catalog.regproc::text)
       || CASE WHEN p.prsheadline <> 0
               THEN E'    HEADLINE = ' || p.prsheadline::pg_catalog.regproc::text || E',\n' ELSE '' END
       || '    LEXTYPES = ' || p.prslextype::pg_catalog.regproc::text || ' );' AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_ts_parser p
JOIN pg_catalog.pg_namespace n ON n.oid = p.prsnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND p.oid >= 16384
UNION ALL
SELECT 'pg_catalog.pg_ts_template'::regclass::oid,
       t.oid,
       'TEXT SEARCH TEMPLATE',
       n.nspname::text,
       t.tmplname::text,
       NULL,
       'pre-data',
       format(E'CREATE TEXT SEARCH TEMPLATE %I.%I (\n', n.nspname, t.tmplname)
       || CASE WHEN t.tmplinit <> 0
               THEN E'    INIT = ' || t.tmplinit::pg_catalog.regproc::text || E',\n' ELSE '' END
       || '    LEXIZE = ' || t.tmpllexize::pg_catalog.regproc::text || ' );',
       NULL,
       NULL,
       NULL,
       NULL
FROM pg_catalog.pg_ts_template t
JOIN pg_catalog.pg_namespace n ON n.oid = t.tmplnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND t.oid >= 16384
UNION ALL
SELECT 'pg_catalog.pg_ts_dict'::regclass::oid,
       d.oid,
       'TEXT SEARCH DICTIONARY',
       n.nspname::text,
       d.dictname::text,
       r.rolname::text,
       'pre-data',
       format(E'CREATE TEXT SEARCH DICTIONARY %I.%I (\n    TEMPLATE = %I.%I', n.nspname, d.dictname,
              tn.nspname, t.tmplname)
       || CASE WHEN d.dictinitoption IS NOT NULL THEN E',\n    ' || d.dictinitoption ELSE '' END
       || ' );',
       NULL,
       NULL,
       NULL,
       NULL
FROM pg_catalog.pg_ts_dict d
JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
JOIN pg_catalog.pg_roles r ON r.oid = d.dictowner
JOIN pg_catalog.pg_ts_template t ON t.oid = d.dicttemplate
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND d.oid >= 16384
UNION ALL
SELECT 'pg_catalog.pg_ts_config'::regclass::oid,
       c.oid,
       'TEXT SEARCH CONFIGURATION',
       n.nspname::text,
       c.cfgname::text,
       r.rolname::text,
       'pre-data',
       format(E'CREATE TEXT SEARCH CONFIGURATION %I.%I (\n    PARSER = %I.%I );', n.nspname, c.cfgname,
              pn.nspname, p.prsname)
       || coalesce((SELECT string_agg(format(E'\nALTER TEXT SEARCH CONFIGURATION %I.%I\n    ADD MAPPING FOR %s WITH %s;',
                                             n.nspname, c.cfgname, quote_ident(m.token), m.dicts),
                                      '' ORDER BY m.maptokentype)
                    FROM (SELECT cm.maptokentype,
                                 (SELECT tt.alias FROM pg_catalog.ts_token_type(c.cfgparser) tt
                                  WHERE tt.tokid = cm.maptokentype) AS token,
                                 string_agg(cm.mapdict::pg_catalog.regdictionary::text, ', '
                                            ORDER BY cm.mapseqno) AS dicts
                          FROM pg_catalog.pg_ts_config_map cm
                          WHERE cm.mapcfg = c.oid
                          GROUP BY cm.maptokentype) m), ''),
       NULL,
       NULL,
       NULL,
       NULL
FROM pg_catalog.pg_ts_config c
JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
JOIN pg_catalog.pg_roles r ON r.oid = c.cfgowner
JOIN pg_catalog.pg_ts_parser p ON p.oid = c.cfgparser
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND c.oid >= 16384
ORDER BY 3, 4, 5
