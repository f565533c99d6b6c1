-- Functions and procedures (prokind f, w, p; kinds FUNCTION and PROCEDURE): `pg_get_functiondef(oid)`
-- followed by `;`, which carries every property (LANGUAGE, TRANSFORM, WINDOW, volatility, STRICT,
-- SECURITY DEFINER, LEAKPROOF, PARALLEL, COST, ROWS, SUPPORT, SET clauses, and SQL-standard bodies).
-- Named like pg_dump's TOC: `f(integer, text)` from the input argument types. Left out: aggregates
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
       CASE WHEN p.oid >= 16384 THEN pg_catalog.pg_get_functiondef(p.oid) || ';' END AS "create",
       p.proacl::text[] AS acl,
       coalesce(ip.initprivs, pg_catalog.acldefault('f', p.proowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
LEFT JOIN pg_catalog.pg_init_privs ip
       ON ip.objoid = p.oid AND ip.classoid = 'pg_catalog.pg_proc'::regclass AND ip.objsubid = 0
WHERE p.prokind IN ('f', 'w', 'p')
  AND CASE WHEN p.oid >= 16384
           THEN n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
           ELSE p.proacl IS DISTINCT FROM ip.initprivs END
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
ORDER BY n.nspname, p.proname, 5
