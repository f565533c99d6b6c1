-- Extended statistics (kind STATISTICS, post-data, owner stxowner, table_oid stxrelid), PostgreSQL 13 and later:
--   <pg_get_statisticsobjdef>;  plus  ALTER STATISTICS s.x SET STATISTICS n;  when a target is set
-- (stxstattarget is -1 for the default up to 16, NULL from 17 on).
SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass::oid AS classid,
       x.oid AS objid,
       'STATISTICS'::text AS kind,
       n.nspname::text AS schema,
       x.stxname::text AS name,
       pg_catalog.pg_get_userbyid(x.stxowner)::text AS owner,
       'post-data'::text AS section,
       pg_catalog.pg_get_statisticsobjdef(x.oid) || ';'
       || CASE WHEN coalesce(x.stxstattarget, -1) <> -1 THEN
            pg_catalog.format(E'\nALTER STATISTICS %I.%I SET STATISTICS %s;', n.nspname, x.stxname, x.stxstattarget)
          ELSE '' END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       x.stxrelid AS table_oid
FROM pg_catalog.pg_statistic_ext x
JOIN pg_catalog.pg_namespace n ON n.oid = x.stxnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
ORDER BY x.oid
