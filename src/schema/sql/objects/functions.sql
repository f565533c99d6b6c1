-- Functions and procedures (prokind f, w, p; kinds FUNCTION and PROCEDURE): `pg_get_functiondef(oid)`
-- followed by `;`, which carries every property (LANGUAGE, TRANSFORM, WINDOW, volatility, STRICT,
-- SECURITY DEFINER, LEAKPROOF, PARALLEL, COST, ROWS, SUPPORT, SET clauses, and SQL-standard bodies).
-- The argument list and a RETURNS TABLE column list are rebuilt with every parameter name quoted, as the
-- server prints only names that are keywords in its own version: `f(json json)` from 13 is a syntax error
-- on 17, where json is a keyword. Named like pg_dump's TOC: `f(integer, text)` from the input argument types. Left out: aggregates
-- (aggregates.sql) and the constructors CREATE TYPE ... AS RANGE makes (an 'i' dependency on the type).
-- Also returned, with create NULL and owner NULL, are built-in functions whose privileges were changed
-- (`REVOKE ... ON FUNCTION pg_catalog.pg_sleep(...)`), as pg_dump dumps those changes. The ACL baseline is
-- the object's initial privileges (pg_init_privs: built-in and extension member functions) when it has
-- some, else acldefault. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_proc'::regclass::oid AS classid,
       p.oid AS objid,
       CASE WHEN p.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind,
       n.nspname::text AS schema,
       format('%s(%s)', p.proname,
              (SELECT coalesce(string_agg(pg_catalog.format_type(a.t, NULL), ', ' ORDER BY a.i), '')
               FROM unnest(p.proargtypes::pg_catalog.oid[]) WITH ORDINALITY AS a(t, i))) AS name,
       CASE WHEN p.oid >= 16384 THEN r.rolname::text END AS owner,
       'pre-data'::text AS section,
       CASE WHEN p.oid >= 16384 THEN quoted.def || ';' END AS "create",
       p.proacl::text[] AS acl,
       coalesce(ip.initprivs, pg_catalog.acldefault('f', p.proowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
LEFT JOIN pg_catalog.pg_init_privs ip
       ON ip.objoid = p.oid AND ip.classoid = 'pg_catalog.pg_proc'::regclass AND ip.objsubid = 0
CROSS JOIN LATERAL (
    SELECT string_agg(CASE a.mode WHEN 'o' THEN 'OUT ' WHEN 'b' THEN 'INOUT ' WHEN 'v' THEN 'VARIADIC ' ELSE '' END
                      || CASE WHEN a.name <> '' THEN '"' || replace(a.name, '"', '""') || '" ' ELSE '' END
                      || pg_catalog.format_type(a.type, NULL)
                      || coalesce(' DEFAULT ' || pg_catalog.pg_get_function_arg_default(p.oid, a.i::int), ''),
                      ', ' ORDER BY a.i) FILTER (WHERE a.mode <> 't') AS args,
           string_agg('"' || replace(a.name, '"', '""') || '" ' || pg_catalog.format_type(a.type, NULL),
                      ', ' ORDER BY a.i) FILTER (WHERE a.mode = 't') AS columns
    FROM (SELECT u.type, coalesce(u.mode, 'i') AS mode, coalesce(u.name, '') AS name, u.i
          FROM unnest(coalesce(p.proallargtypes, p.proargtypes::pg_catalog.oid[]), p.proargmodes::text[],
                      p.proargnames) WITH ORDINALITY AS u(type, mode, name, i)) AS a
) AS arg
LEFT JOIN LATERAL (
    -- The server's header is `CREATE OR REPLACE kind schema.name(arguments)\n RETURNS result\n`.
    SELECT pg_catalog.pg_get_functiondef(p.oid) AS def,
           format('CREATE OR REPLACE %s %I.%I(', CASE WHEN p.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                  n.nspname, p.proname) AS head,
           pg_catalog.pg_get_function_arguments(p.oid) AS args,
           pg_catalog.pg_get_function_result(p.oid) AS result
    WHERE p.oid >= 16384
) AS server ON true
CROSS JOIN LATERAL (
    SELECT CASE WHEN NOT starts_with(server.def, server.head || server.args || ')') THEN server.def
                ELSE server.head || coalesce(arg.args, '') || ')'
                     || CASE WHEN arg.columns IS NOT NULL
                              AND starts_with(substr(server.def, length(server.head || server.args || ')') + 1),
                                              E'\n RETURNS ' || server.result || E'\n')
                             THEN E'\n RETURNS TABLE(' || arg.columns || ')'
                                  || substr(server.def, length(server.head || server.args || ')' || E'\n RETURNS '
                                                                  || server.result) + 1)
                             ELSE substr(server.def, length(server.head || server.args || ')') + 1) END
           END AS def
) AS quoted
WHERE p.prokind IN ('f', 'w', 'p')
  AND CASE WHEN p.oid >= 16384
           THEN n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
           ELSE p.proacl IS DISTINCT FROM ip.initprivs END
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
ORDER BY n.nspname, p.proname, 5
