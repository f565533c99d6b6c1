-- Aggregates (prokind 'a', kind AGGREGATE): `CREATE AGGREGATE s.a(args) (SFUNC = ..., STYPE = ..., ...);`
-- from pg_aggregate: plain, ordered-set (`direct args ORDER BY args`) and hypothetical-set aggregates,
-- with their final, combine, serial/deserial functions, moving-aggregate options, SORTOP and PARALLEL.
-- FINALFUNC_MODIFY and MFINALFUNC_MODIFY are always written (the default depends on the aggregate's kind;
-- stating it gives the same catalog). A plain aggregate's parameter names are always quoted, as in
-- functions.sql (an ordered-set aggregate's list, with its ORDER BY, is the server's). Named like pg_dump's TOC: `a(integer)`, `a(*)` without arguments.
-- As in functions.sql, the ACL baseline is pg_init_privs when the aggregate has some. Works on PostgreSQL
-- 13 and later.
SELECT 'pg_catalog.pg_proc'::regclass::oid AS classid,
       p.oid AS objid,
       'AGGREGATE'::text AS kind,
       n.nspname::text AS schema,
       format('%s(%s)', p.proname,
              (SELECT coalesce(string_agg(pg_catalog.format_type(a.t, NULL), ', ' ORDER BY a.i), '*')
               FROM unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i))) AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format(E'CREATE AGGREGATE %I.%I(%s) (\n    SFUNC = %s,\n    STYPE = %s',
              n.nspname, p.proname,
              coalesce(NULLIF(CASE WHEN g.aggkind = 'n' THEN arg.quoted
                                   ELSE pg_catalog.pg_get_function_arguments(p.oid) END, ''), '*'),
              g.aggtransfn::pg_catalog.regproc::text, pg_catalog.format_type(g.aggtranstype, NULL))
       || CASE WHEN g.aggtransspace <> 0 THEN E',\n    SSPACE = ' || g.aggtransspace ELSE '' END
       || CASE WHEN g.agginitval IS NOT NULL THEN E',\n    INITCOND = ' || quote_literal(g.agginitval) ELSE '' END
       || CASE WHEN g.aggfinalfn <> 0 THEN E',\n    FINALFUNC = ' || g.aggfinalfn::pg_catalog.regproc::text ELSE '' END
       || CASE WHEN g.aggfinalextra THEN E',\n    FINALFUNC_EXTRA' ELSE '' END
       || E',\n    FINALFUNC_MODIFY = ' || CASE g.aggfinalmodify WHEN 'r' THEN 'READ_ONLY' WHEN 's' THEN 'SHAREABLE'
                                                              ELSE 'READ_WRITE' END
       || CASE WHEN g.aggcombinefn <> 0 THEN E',\n    COMBINEFUNC = ' || g.aggcombinefn::pg_catalog.regproc::text ELSE '' END
       || CASE WHEN g.aggserialfn <> 0 THEN E',\n    SERIALFUNC = ' || g.aggserialfn::pg_catalog.regproc::text ELSE '' END
       || CASE WHEN g.aggdeserialfn <> 0 THEN E',\n    DESERIALFUNC = ' || g.aggdeserialfn::pg_catalog.regproc::text ELSE '' END
       || CASE WHEN g.aggmtransfn <> 0
               THEN E',\n    MSFUNC = ' || g.aggmtransfn::pg_catalog.regproc::text
                    || E',\n    MINVFUNC = ' || g.aggminvtransfn::pg_catalog.regproc::text
                    || E',\n    MSTYPE = ' || pg_catalog.format_type(g.aggmtranstype, NULL)
                    || CASE WHEN g.aggmtransspace <> 0 THEN E',\n    MSSPACE = ' || g.aggmtransspace ELSE '' END
                    || CASE WHEN g.aggminitval IS NOT NULL
                            THEN E',\n    MINITCOND = ' || quote_literal(g.aggminitval) ELSE '' END
                    || CASE WHEN g.aggmfinalfn <> 0
                            THEN E',\n    MFINALFUNC = ' || g.aggmfinalfn::pg_catalog.regproc::text ELSE '' END
                    || CASE WHEN g.aggmfinalextra THEN E',\n    MFINALFUNC_EXTRA' ELSE '' END
                    || E',\n    MFINALFUNC_MODIFY = ' || CASE g.aggmfinalmodify WHEN 'r' THEN 'READ_ONLY'
                                                          WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END
               ELSE '' END
       || CASE WHEN g.aggsortop <> 0
               THEN format(E',\n    SORTOP = OPERATOR(%I.%s)', son.nspname, so.oprname) ELSE '' END
       || CASE WHEN g.aggkind = 'h' THEN E',\n    HYPOTHETICAL' ELSE '' END
       || CASE p.proparallel WHEN 's' THEN E',\n    PARALLEL = safe' WHEN 'r' THEN E',\n    PARALLEL = restricted'
                             ELSE '' END
       || E'\n);' AS "create",
       p.proacl::text[] AS acl,
       coalesce(ip.initprivs, pg_catalog.acldefault('f', p.proowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_aggregate g ON g.aggfnoid = p.oid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
LEFT JOIN pg_catalog.pg_operator so ON so.oid = g.aggsortop
LEFT JOIN pg_catalog.pg_namespace son ON son.oid = so.oprnamespace
LEFT JOIN pg_catalog.pg_init_privs ip
       ON ip.objoid = p.oid AND ip.classoid = 'pg_catalog.pg_proc'::regclass AND ip.objsubid = 0
CROSS JOIN LATERAL (
    SELECT string_agg(CASE WHEN u.mode = 'v' THEN 'VARIADIC ' ELSE '' END
                      || CASE WHEN coalesce(u.name, '') <> '' THEN '"' || replace(u.name, '"', '""') || '" ' ELSE '' END
                      || pg_catalog.format_type(u.type, NULL),
                      ', ' ORDER BY u.i) AS quoted
    FROM unnest(p.proargtypes::pg_catalog.oid[], p.proargmodes::text[], p.proargnames)
         WITH ORDINALITY AS u(type, mode, name, i)
) AS arg
WHERE p.prokind = 'a'
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND p.oid >= 16384
ORDER BY n.nspname, p.proname, 5
