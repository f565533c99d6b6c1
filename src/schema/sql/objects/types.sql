-- Types of kind TYPE: enums, composite types (the pg_type row; its pg_class row of relkind 'c' belongs to
-- it), range types, base types and shell types that were never completed. A base type is returned twice:
-- first a row of kind SHELL TYPE (`CREATE TYPE s.t;`, which its I/O functions need), then the full
-- `CREATE TYPE s.t (...)` of kind TYPE; a range type with a canonical function gets the same shell row.
-- Array types and multirange types are created with their element or range type (they have an 'i'
-- dependency on it) and are not returned; domains are in domains.sql. PostgreSQL 13 and later: the columns
-- 14 added (typsubscript, rngmultitypid) are read through to_jsonb, which gives NULL where they do not exist.
WITH ty AS (
    SELECT t.*, n.nspname, r.rolname,
           format('%I.%I', n.nspname, t.typname) AS qname
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    JOIN pg_catalog.pg_roles r ON r.oid = t.typowner
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND t.oid >= 16384
      AND (t.typtype IN ('b', 'e', 'r')
           OR (t.typtype = 'p' AND NOT t.typisdefined)
           OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                                           WHERE c.oid = t.typrelid AND c.relkind = 'c')))
      -- array types come with their element type
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
),
defs AS (
    -- shells: base types, ranges with a canonical function, and types never completed
    SELECT ty.oid, 1 AS step,
           CASE WHEN ty.typtype = 'p' THEN 'TYPE' ELSE 'SHELL TYPE' END AS kind,
           format('CREATE TYPE %s;', ty.qname) AS ddl
    FROM ty
    WHERE ty.typtype IN ('b', 'p')
       OR (ty.typtype = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_range rg
                                        WHERE rg.rngtypid = ty.oid AND rg.rngcanonical <> 0))
    UNION ALL
    -- enums
    SELECT ty.oid, 2, 'TYPE',
           format(E'CREATE TYPE %s AS ENUM (%s\n);', ty.qname,
                  coalesce((SELECT string_agg(E'\n    ' || quote_literal(e.enumlabel), ','
                                              ORDER BY e.enumsortorder)
                            FROM pg_catalog.pg_enum e WHERE e.enumtypid = ty.oid), ''))
    FROM ty WHERE ty.typtype = 'e'
    UNION ALL
    -- composite types
    SELECT ty.oid, 2, 'TYPE',
           format(E'CREATE TYPE %s AS (%s\n);', ty.qname,
                  coalesce((SELECT string_agg(
                                format(E'\n\t%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod))
                                || CASE WHEN a.attcollation <> at.typcollation
                                        THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END,
                                ',' ORDER BY a.attnum)
                            FROM pg_catalog.pg_attribute a
                            JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
                            LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
                            LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                            WHERE a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped), ''))
    FROM ty WHERE ty.typtype = 'c'
    UNION ALL
    -- range types
    SELECT ty.oid, 2, 'TYPE',
           format(E'CREATE TYPE %s AS RANGE (\n    subtype = %s', ty.qname,
                  pg_catalog.format_type(rg.rngsubtype, NULL))
           || CASE WHEN coalesce((pg_catalog.to_jsonb(rg) ->> 'rngmultitypid')::oid, 0) <> 0
                   THEN E',\n    multirange_type_name = '
                        || pg_catalog.format_type((pg_catalog.to_jsonb(rg) ->> 'rngmultitypid')::oid, NULL)
                   ELSE '' END
           || CASE WHEN NOT opc.opcdefault
                   THEN format(E',\n    subtype_opclass = %I.%I', opcn.nspname, opc.opcname) ELSE '' END
           || CASE WHEN rg.rngcollation <> 0 AND rg.rngcollation <> st.typcollation
                   THEN format(E',\n    collation = %I.%I', cn.nspname, co.collname) ELSE '' END
           || CASE WHEN rg.rngcanonical <> 0
                   THEN E',\n    canonical = ' || rg.rngcanonical::pg_catalog.regproc::text ELSE '' END
           || CASE WHEN rg.rngsubdiff <> 0
                   THEN E',\n    subtype_diff = ' || rg.rngsubdiff::pg_catalog.regproc::text ELSE '' END
           || E'\n);'
    FROM ty
    JOIN pg_catalog.pg_range rg ON rg.rngtypid = ty.oid
    JOIN pg_catalog.pg_type st ON st.oid = rg.rngsubtype
    JOIN pg_catalog.pg_opclass opc ON opc.oid = rg.rngsubopc
    JOIN pg_catalog.pg_namespace opcn ON opcn.oid = opc.opcnamespace
    LEFT JOIN pg_catalog.pg_collation co ON co.oid = rg.rngcollation
    LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
    WHERE ty.typtype = 'r'
    UNION ALL
    -- base types
    SELECT ty.oid, 2, 'TYPE',
           format(E'CREATE TYPE %s (\n    INTERNALLENGTH = %s', ty.qname,
                  CASE WHEN ty.typlen = -1 THEN 'variable' ELSE ty.typlen::text END)
           || E',\n    INPUT = ' || ty.typinput::pg_catalog.regproc::text
           || E',\n    OUTPUT = ' || ty.typoutput::pg_catalog.regproc::text
           || CASE WHEN ty.typreceive <> 0 THEN E',\n    RECEIVE = ' || ty.typreceive::pg_catalog.regproc::text ELSE '' END
           || CASE WHEN ty.typsend <> 0 THEN E',\n    SEND = ' || ty.typsend::pg_catalog.regproc::text ELSE '' END
           || CASE WHEN ty.typmodin <> 0 THEN E',\n    TYPMOD_IN = ' || ty.typmodin::pg_catalog.regproc::text ELSE '' END
           || CASE WHEN ty.typmodout <> 0 THEN E',\n    TYPMOD_OUT = ' || ty.typmodout::pg_catalog.regproc::text ELSE '' END
           || CASE WHEN ty.typanalyze <> 0 THEN E',\n    ANALYZE = ' || ty.typanalyze::pg_catalog.regproc::text ELSE '' END
           || CASE WHEN coalesce(pg_catalog.to_jsonb(ty) ->> 'typsubscript', '-') <> '-'
                   THEN E',\n    SUBSCRIPT = ' || (pg_catalog.to_jsonb(ty) ->> 'typsubscript') ELSE '' END
           || CASE WHEN ty.typdefaultbin IS NOT NULL
                   THEN E',\n    DEFAULT = ' || pg_catalog.pg_get_expr(ty.typdefaultbin, 0)
                   WHEN ty.typdefault IS NOT NULL
                   THEN E',\n    DEFAULT = ' || quote_literal(ty.typdefault) ELSE '' END
           || CASE WHEN ty.typelem <> 0 THEN E',\n    ELEMENT = ' || pg_catalog.format_type(ty.typelem, NULL) ELSE '' END
           || CASE WHEN ty.typcategory::text <> 'U' THEN E',\n    CATEGORY = ' || quote_literal(ty.typcategory::text) ELSE '' END
           || CASE WHEN ty.typispreferred THEN E',\n    PREFERRED = true' ELSE '' END
           || CASE WHEN ty.typdelim::text <> ',' THEN E',\n    DELIMITER = ' || quote_literal(ty.typdelim::text) ELSE '' END
           || E',\n    ALIGNMENT = ' || CASE ty.typalign WHEN 'c' THEN 'char' WHEN 's' THEN 'int2'
                                                        WHEN 'i' THEN 'int4' ELSE 'double' END
           || E',\n    STORAGE = ' || CASE ty.typstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external'
                                                         WHEN 'm' THEN 'main' ELSE 'extended' END
           || CASE WHEN ty.typcollation <> 0 THEN E',\n    COLLATABLE = true' ELSE '' END
           || CASE WHEN ty.typbyval THEN E',\n    PASSEDBYVALUE' ELSE '' END
           || E'\n);'
    FROM ty WHERE ty.typtype = 'b'
)
SELECT 'pg_catalog.pg_type'::regclass::oid AS classid,
       ty.oid AS objid,
       d.kind,
       ty.nspname::text AS schema,
       ty.typname::text AS name,
       ty.rolname::text AS owner,
       'pre-data'::text AS section,
       d.ddl AS "create",
       ty.typacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = ty.oid AND ip.classoid = 'pg_catalog.pg_type'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('T', ty.typowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM ty
JOIN defs d ON d.oid = ty.oid
ORDER BY ty.nspname, ty.typname, d.step
