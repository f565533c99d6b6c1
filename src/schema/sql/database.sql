-- The current database's own properties, which `restore --create` gives the database it creates:
-- encoding and locale, owner, comment, privileges, connection limit, template flag, tablespace, and the
-- settings of ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET. Works on PostgreSQL 13
-- and later: the locale provider appears in 15, ICU rules in 16, the builtin provider's locale
-- (datlocale, which replaced daticulocale) in 17.
SELECT d.datname AS name,
       pg_catalog.pg_get_userbyid(d.datdba) AS owner,
       pg_catalog.pg_encoding_to_char(d.encoding) AS encoding,
       pg_catalog.to_jsonb(d) ->> 'datlocprovider' AS locale_provider,
       d.datcollate AS "collate",
       d.datctype AS ctype,
       COALESCE(pg_catalog.to_jsonb(d) ->> 'datlocale', pg_catalog.to_jsonb(d) ->> 'daticulocale') AS locale,
       pg_catalog.to_jsonb(d) ->> 'daticurules' AS icu_rules,
       d.datistemplate AS is_template,
       d.datconnlimit AS connection_limit,
       NULLIF(t.spcname, 'pg_default')::text AS tablespace,
       pg_catalog.shobj_description(d.oid, 'pg_database') AS comment,
       d.datacl::text[] AS acl,
       pg_catalog.acldefault('d', d.datdba)::text[] AS acl_default,
       COALESCE((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
                 WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}') AS settings,
       COALESCE((SELECT pg_catalog.array_agg(pg_catalog.json_build_array(r.rolname, c.setting)::text
                                             ORDER BY r.rolname, c.ord)
                 FROM pg_catalog.pg_db_role_setting s
                 JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
                 CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) WITH ORDINALITY AS c(setting, ord)
                 WHERE s.setdatabase = d.oid), '{}') AS role_settings
FROM pg_catalog.pg_database d
JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace
WHERE d.datname = pg_catalog.current_database()
