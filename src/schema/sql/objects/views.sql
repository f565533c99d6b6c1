-- Placeholder: returns no rows yet (the engine's coverage check reports every object of this kind as
-- unsupported). Works on PostgreSQL 13 and later.
SELECT NULL::oid AS classid, NULL::oid AS objid, NULL::text AS kind, NULL::text AS schema, NULL::text AS name,
       NULL::text AS owner, NULL::text AS section, NULL::text AS "create", NULL::text[] AS acl,
       NULL::text[] AS acl_default, NULL::int8 AS size, NULL::oid AS table_oid
WHERE false
