-- Transforms (kind TRANSFORM): `CREATE TRANSFORM FOR type LANGUAGE l (FROM SQL WITH FUNCTION f(args), TO
-- SQL WITH FUNCTION g(args));`, either function may be absent. Transforms have no schema, owner or
-- privileges. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_transform'::regclass::oid AS classid,
       t.oid AS objid,
       'TRANSFORM'::text AS kind,
       NULL::text AS schema,
       format('TRANSFORM FOR %s LANGUAGE %s', pg_catalog.format_type(t.trftype, NULL), l.lanname) AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       format('CREATE TRANSFORM FOR %s LANGUAGE %I (%s);', pg_catalog.format_type(t.trftype, NULL), l.lanname,
              concat_ws(', ',
                        CASE WHEN t.trffromsql <> 0
                             THEN format('FROM SQL WITH FUNCTION %I.%I(%s)', fn.nspname, f.proname,
                                         pg_catalog.pg_get_function_identity_arguments(f.oid)) END,
                        CASE WHEN t.trftosql <> 0
                             THEN format('TO SQL WITH FUNCTION %I.%I(%s)', gn.nspname, g.proname,
                                         pg_catalog.pg_get_function_identity_arguments(g.oid)) END))
       AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_transform t
JOIN pg_catalog.pg_language l ON l.oid = t.trflang
LEFT JOIN pg_catalog.pg_proc f ON f.oid = t.trffromsql
LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
LEFT JOIN pg_catalog.pg_proc g ON g.oid = t.trftosql
LEFT JOIN pg_catalog.pg_namespace gn ON gn.oid = g.pronamespace
WHERE t.oid >= 16384
ORDER BY 5
