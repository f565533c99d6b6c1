-- Procedural languages (kind PROCEDURAL LANGUAGE): `CREATE [TRUSTED] PROCEDURAL LANGUAGE x HANDLER s.f
-- [INLINE s.g] [VALIDATOR s.h];`. Languages created at initdb (internal, c, sql, plpgsql) are left out,
-- as pg_dump leaves them out; languages that extensions create are returned and dropped by the engine
-- with the other extension members. Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_language'::regclass::oid AS classid,
       l.oid AS objid,
       'PROCEDURAL LANGUAGE'::text AS kind,
       NULL::text AS schema,
       l.lanname::text AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format('CREATE %sPROCEDURAL LANGUAGE %I HANDLER %I.%I', CASE WHEN l.lanpltrusted THEN 'TRUSTED ' ELSE '' END,
              l.lanname, hn.nspname, h.proname)
       || CASE WHEN l.laninline <> 0 THEN format(' INLINE %I.%I', ino.nspname, i.proname) ELSE '' END
       || CASE WHEN l.lanvalidator <> 0 THEN format(' VALIDATOR %I.%I', vn.nspname, v.proname) ELSE '' END
       || ';' AS "create",
       l.lanacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = l.oid AND ip.classoid = 'pg_catalog.pg_language'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('l', l.lanowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_language l
JOIN pg_catalog.pg_roles r ON r.oid = l.lanowner
JOIN pg_catalog.pg_proc h ON h.oid = l.lanplcallfoid
JOIN pg_catalog.pg_namespace hn ON hn.oid = h.pronamespace
LEFT JOIN pg_catalog.pg_proc i ON i.oid = l.laninline
LEFT JOIN pg_catalog.pg_namespace ino ON ino.oid = i.pronamespace
LEFT JOIN pg_catalog.pg_proc v ON v.oid = l.lanvalidator
LEFT JOIN pg_catalog.pg_namespace vn ON vn.oid = v.pronamespace
WHERE l.oid >= 16384
  AND l.lanispl
ORDER BY l.lanname
