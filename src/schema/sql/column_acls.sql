-- Column privileges of user relations: one row per column with an ACL. Works on PostgreSQL 13 and later.
SELECT a.attrelid AS table_oid, a.attname AS name, a.attacl::text[] AS acl
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND c.oid >= 16384
ORDER BY a.attrelid, a.attnum
