-- Row-level security policies (kind POLICY, post-data, pg_policy):
--   CREATE POLICY p ON s.t [AS RESTRICTIVE] [FOR SELECT|INSERT|UPDATE|DELETE] [TO roles]
--     [USING (...)] [WITH CHECK (...)];
-- and, for every table with relrowsecurity or relforcerowsecurity, a second row of the table itself
-- (classid pg_class, objid the table, kind ROW SECURITY, post-data; tables.sql returns the first):
--   ALTER TABLE s.t ENABLE ROW LEVEL SECURITY;  ALTER TABLE ONLY s.t FORCE ROW LEVEL SECURITY;
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass::oid AS classid,
       pol.oid AS objid,
       'POLICY'::text AS kind,
       n.nspname::text AS schema,
       c.relname || ' ' || pol.polname AS name,
       NULL::text AS owner,
       'post-data'::text AS section,
       pg_catalog.format('CREATE POLICY %I ON %I.%I', pol.polname, n.nspname, c.relname)
       || CASE WHEN pol.polpermissive THEN '' ELSE ' AS RESTRICTIVE' END
       || CASE pol.polcmd WHEN 'r' THEN ' FOR SELECT' WHEN 'a' THEN ' FOR INSERT'
                          WHEN 'w' THEN ' FOR UPDATE' WHEN 'd' THEN ' FOR DELETE' ELSE '' END
       || CASE WHEN pol.polroles = '{0}'::oid[] THEN ''
               ELSE ' TO ' || (SELECT pg_catalog.string_agg(
                                          CASE WHEN r.oid = 0 THEN 'PUBLIC'
                                               ELSE pg_catalog.quote_ident(a.rolname) END,
                                          ', ' ORDER BY r.ord)
                               FROM pg_catalog.unnest(pol.polroles) WITH ORDINALITY AS r(oid, ord)
                               LEFT JOIN pg_catalog.pg_roles a ON a.oid = r.oid) END
       || CASE WHEN pol.polqual IS NOT NULL THEN
               ' USING (' || pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) || ')' ELSE '' END
       || CASE WHEN pol.polwithcheck IS NOT NULL THEN
               ' WITH CHECK (' || pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) || ')' ELSE '' END
       || ';' AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       pol.polrelid AS table_oid
FROM pg_catalog.pg_policy pol
JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid,
       c.oid,
       'ROW SECURITY',
       n.nspname::text,
       c.relname::text,
       NULL,
       'post-data',
       pg_catalog.concat_ws(E'\n',
           CASE WHEN c.relrowsecurity THEN
                pg_catalog.format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY;', n.nspname, c.relname) END,
           CASE WHEN c.relforcerowsecurity THEN
                pg_catalog.format('ALTER TABLE ONLY %I.%I FORCE ROW LEVEL SECURITY;', n.nspname, c.relname) END),
       NULL,
       NULL,
       NULL,
       c.oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relrowsecurity OR c.relforcerowsecurity)
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
ORDER BY 1, 2
