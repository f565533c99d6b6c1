-- Access methods (kind ACCESS METHOD): `CREATE ACCESS METHOD x TYPE INDEX|TABLE HANDLER s.f;`. Those
-- created at initdb (heap, btree, hash, gist, gin, spgist, brin) are left out. Access methods have no
-- schema, owner or privileges. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_am'::regclass::oid AS classid,
       a.oid AS objid,
       'ACCESS METHOD'::text AS kind,
       NULL::text AS schema,
       a.amname::text AS name,
       NULL::text AS owner,
       'pre-data'::text AS section,
       format('CREATE ACCESS METHOD %I TYPE %s HANDLER %s;', a.amname,
              CASE a.amtype WHEN 'i' THEN 'INDEX' WHEN 't' THEN 'TABLE' END,
              a.amhandler::pg_catalog.regproc::text) AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_am a
WHERE a.oid >= 16384
ORDER BY a.amname
