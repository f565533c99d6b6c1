-- Operators (kind OPERATOR): `CREATE OPERATOR s.op (FUNCTION = f, LEFTARG = t, RIGHTARG = t, COMMUTATOR =
-- OPERATOR(s.op), NEGATOR = OPERATOR(s.op), MERGES, HASHES, RESTRICT = f, JOIN = f);`. A commutator or
-- negator created later is made as a shell by the first CREATE OPERATOR and completed by its own, as in
-- pg_dump's output. Shell operators (no function) are left out, as pg_dump leaves them out: they cannot be
-- created on their own. Named like pg_dump's TOC: the operator's name alone. Works on PostgreSQL 13 and
-- later (a postfix operator, 13 only, has no RIGHTARG).
SELECT 'pg_catalog.pg_operator'::regclass::oid AS classid,
       o.oid AS objid,
       'OPERATOR'::text AS kind,
       n.nspname::text AS schema,
       o.oprname::text AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format(E'CREATE OPERATOR %I.%s (\n    FUNCTION = %s', n.nspname, o.oprname, o.oprcode::pg_catalog.regproc::text)
       || CASE WHEN o.oprleft <> 0 THEN E',\n    LEFTARG = ' || pg_catalog.format_type(o.oprleft, NULL) ELSE '' END
       || CASE WHEN o.oprright <> 0 THEN E',\n    RIGHTARG = ' || pg_catalog.format_type(o.oprright, NULL) ELSE '' END
       || CASE WHEN o.oprcom <> 0 THEN format(E',\n    COMMUTATOR = OPERATOR(%I.%s)', cn.nspname, c.oprname) ELSE '' END
       || CASE WHEN o.oprnegate <> 0 THEN format(E',\n    NEGATOR = OPERATOR(%I.%s)', nn.nspname, ng.oprname) ELSE '' END
       || CASE WHEN o.oprcanmerge THEN E',\n    MERGES' ELSE '' END
       || CASE WHEN o.oprcanhash THEN E',\n    HASHES' ELSE '' END
       || CASE WHEN o.oprrest <> 0 THEN E',\n    RESTRICT = ' || o.oprrest::pg_catalog.regproc::text ELSE '' END
       || CASE WHEN o.oprjoin <> 0 THEN E',\n    JOIN = ' || o.oprjoin::pg_catalog.regproc::text ELSE '' END
       || E'\n);' AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
JOIN pg_catalog.pg_roles r ON r.oid = o.oprowner
LEFT JOIN pg_catalog.pg_operator c ON c.oid = o.oprcom
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = c.oprnamespace
LEFT JOIN pg_catalog.pg_operator ng ON ng.oid = o.oprnegate
LEFT JOIN pg_catalog.pg_namespace nn ON nn.oid = ng.oprnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND o.oid >= 16384
  AND o.oprcode <> 0
ORDER BY n.nspname, o.oprname, o.oid
