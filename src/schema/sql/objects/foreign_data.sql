-- Foreign-data wrappers, foreign servers and user mappings, all pre-data. Works on PostgreSQL 13 and later.
-- * FOREIGN DATA WRAPPER (pg_foreign_data_wrapper, owner fdwowner, acl fdwacl, acl_default 'F'):
--     CREATE FOREIGN DATA WRAPPER w [HANDLER s.f] [VALIDATOR s.f] [OPTIONS (k 'v', ...)];
-- * SERVER (pg_foreign_server, owner srvowner, acl srvacl, acl_default 'S'):
--     CREATE SERVER s [TYPE '...'] [VERSION '...'] FOREIGN DATA WRAPPER w [OPTIONS (...)];
-- * USER MAPPING (pg_user_mapping, no owner; name as pg_dump's tag "USER MAPPING u SERVER s"):
--     CREATE USER MAPPING FOR u|PUBLIC SERVER s [OPTIONS (...)];
--   The options come from pg_user_mappings, which shows them to a superuser (and to the mapped user or
--   the server's owner); for other callers they are NULL and the mapping would lose them.
-- Options keep the catalog's order.
SELECT 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass::oid AS classid,
       w.oid AS objid,
       'FOREIGN DATA WRAPPER'::text AS kind,
       NULL::text AS schema,
       w.fdwname::text AS name,
       pg_catalog.pg_get_userbyid(w.fdwowner)::text AS owner,
       'pre-data'::text AS section,
       pg_catalog.format('CREATE FOREIGN DATA WRAPPER %I', w.fdwname)
       || CASE WHEN w.fdwhandler <> 0 THEN
            (SELECT pg_catalog.format(' HANDLER %I.%I', hn.nspname, h.proname)
             FROM pg_catalog.pg_proc h JOIN pg_catalog.pg_namespace hn ON hn.oid = h.pronamespace
             WHERE h.oid = w.fdwhandler) ELSE '' END
       || CASE WHEN w.fdwvalidator <> 0 THEN
            (SELECT pg_catalog.format(' VALIDATOR %I.%I', vn.nspname, v.proname)
             FROM pg_catalog.pg_proc v JOIN pg_catalog.pg_namespace vn ON vn.oid = v.pronamespace
             WHERE v.oid = w.fdwvalidator) ELSE '' END
       || COALESCE(' OPTIONS (' || (SELECT pg_catalog.string_agg(
                                               pg_catalog.quote_ident(o.option_name) || ' '
                                               || pg_catalog.quote_literal(o.option_value), ', ')
                                    FROM pg_catalog.pg_options_to_table(w.fdwoptions) o) || ')', '')
       || ';' AS "create",
       w.fdwacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = w.oid AND ip.classoid = 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('F', w.fdwowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_foreign_data_wrapper w
UNION ALL
SELECT 'pg_catalog.pg_foreign_server'::pg_catalog.regclass::oid,
       s.oid,
       'SERVER',
       NULL,
       s.srvname::text,
       pg_catalog.pg_get_userbyid(s.srvowner)::text,
       'pre-data',
       pg_catalog.format('CREATE SERVER %I', s.srvname)
       || CASE WHEN s.srvtype IS NOT NULL THEN ' TYPE ' || pg_catalog.quote_literal(s.srvtype) ELSE '' END
       || CASE WHEN s.srvversion IS NOT NULL THEN ' VERSION ' || pg_catalog.quote_literal(s.srvversion) ELSE '' END
       || pg_catalog.format(' FOREIGN DATA WRAPPER %I', w.fdwname)
       || COALESCE(' OPTIONS (' || (SELECT pg_catalog.string_agg(
                                               pg_catalog.quote_ident(o.option_name) || ' '
                                               || pg_catalog.quote_literal(o.option_value), ', ')
                                    FROM pg_catalog.pg_options_to_table(s.srvoptions) o) || ')', '')
       || ';',
       s.srvacl::text[],
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = s.oid AND ip.classoid = 'pg_catalog.pg_foreign_server'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('S', s.srvowner))::text[],
       NULL,
       NULL
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
UNION ALL
SELECT 'pg_catalog.pg_user_mapping'::pg_catalog.regclass::oid,
       um.umid,
       'USER MAPPING',
       NULL,
       'USER MAPPING ' || um.usename || ' SERVER ' || um.srvname,
       NULL,
       'pre-data',
       pg_catalog.format('CREATE USER MAPPING FOR %s SERVER %I',
                         CASE WHEN um.umuser = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(um.usename) END,
                         um.srvname)
       || COALESCE(' OPTIONS (' || (SELECT pg_catalog.string_agg(
                                               pg_catalog.quote_ident(o.option_name) || ' '
                                               || pg_catalog.quote_literal(o.option_value), ', ')
                                    FROM pg_catalog.pg_options_to_table(um.umoptions) o) || ')', '')
       || ';',
       NULL,
       NULL,
       NULL,
       NULL
FROM pg_catalog.pg_user_mappings um
ORDER BY 1, 2
