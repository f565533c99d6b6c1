-- Casts (kind CAST): `CREATE CAST (src AS dst) WITH FUNCTION f(args) | WITHOUT FUNCTION | WITH INOUT
-- [AS ASSIGNMENT | AS IMPLICIT];`. pg_dump dumps every cast created after initdb (OID 16384 and up),
-- whatever its types and function, and so does this query, except the casts from a range type to its
-- multirange, which CREATE TYPE ... AS RANGE makes (an 'i' dependency on the types). Casts have no
-- schema, owner or privileges.
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_cast'::regclass::oid AS classid,
       c.oid AS objid,
       'CAST'::text AS kind,
       NULL::text AS schema,
       format('CAST (%s AS %s)', pg_catalog.format_type(c.castsource, NULL),
              pg_catalog.format_type(c.casttarget, NULL)) AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       format('CREATE CAST (%s AS %s) %s%s;',
              pg_catalog.format_type(c.castsource, NULL), pg_catalog.format_type(c.casttarget, NULL),
              CASE c.castmethod
                   WHEN 'f' THEN format('WITH FUNCTION %I.%I(%s)', pn.nspname, p.proname,
                                        pg_catalog.pg_get_function_identity_arguments(p.oid))
                   WHEN 'i' THEN 'WITH INOUT'
                   ELSE 'WITHOUT FUNCTION' END,
              CASE c.castcontext WHEN 'a' THEN ' AS ASSIGNMENT' WHEN 'i' THEN ' AS IMPLICIT' ELSE '' END)
       AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_cast c
LEFT JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
WHERE c.oid >= 16384
  -- the casts a range type makes to its multirange come and go with it
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = c.oid AND d.deptype = 'i')
ORDER BY 5
