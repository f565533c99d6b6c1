-- Operator classes (kind OPERATOR CLASS): `CREATE OPERATOR CLASS s.c [DEFAULT] FOR TYPE t USING am FAMILY
-- s.f AS OPERATOR n op(type,type) [FOR ORDER BY s.f], ..., FUNCTION n (type, type) f(args), ...,
-- STORAGE t;` with the members whose pg_depend parent is the class (the family's own members are in
-- operator_families.sql). FAMILY is always named: the family is returned by operator_families.sql even
-- when CREATE OPERATOR CLASS made it. A class without members or storage type gets `STORAGE <its input
-- type>`, as pg_dump writes it (the same catalog row). Members are listed in the source's physical order
-- (pg_dump sorts by number only, ties in catalog order). Works on PostgreSQL 13 and later.
WITH cls AS (
    SELECT c.*, n.nspname, am.amname
    FROM pg_catalog.pg_opclass c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace
    JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND c.oid >= 16384
),
member AS (
    SELECT d.refobjid AS cls, 1 AS part, ao.ctid AS pos,
           format('OPERATOR %s %s', ao.amopstrategy, ao.amopopr::pg_catalog.regoperator::text)
           || CASE WHEN ao.amoppurpose = 'o' THEN format(' FOR ORDER BY %I.%I', sn.nspname, sf.opfname) ELSE '' END
           AS item
    FROM pg_catalog.pg_amop ao
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_amop'::regclass AND d.objid = ao.oid
                               AND d.refclassid = 'pg_catalog.pg_opclass'::regclass
    LEFT JOIN pg_catalog.pg_opfamily sf ON sf.oid = ao.amopsortfamily
    LEFT JOIN pg_catalog.pg_namespace sn ON sn.oid = sf.opfnamespace
    UNION ALL
    SELECT d.refobjid, 2, ap.ctid,
           format('FUNCTION %s (%s, %s) %s', ap.amprocnum, pg_catalog.format_type(ap.amproclefttype, NULL),
                  pg_catalog.format_type(ap.amprocrighttype, NULL), ap.amproc::pg_catalog.regprocedure::text)
    FROM pg_catalog.pg_amproc ap
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_amproc'::regclass AND d.objid = ap.oid
                               AND d.refclassid = 'pg_catalog.pg_opclass'::regclass
    UNION ALL
    -- From pg_opclass itself, not cls: the lookup for one class then uses pg_opclass's index.
    SELECT c.oid, 3, NULL::pg_catalog.tid, 'STORAGE ' || pg_catalog.format_type(c.opckeytype, NULL)
    FROM pg_catalog.pg_opclass c WHERE c.opckeytype <> 0
)
SELECT 'pg_catalog.pg_opclass'::regclass::oid AS classid,
       cls.oid AS objid,
       'OPERATOR CLASS'::text AS kind,
       cls.nspname::text AS schema,
       cls.opcname::text AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format(E'CREATE OPERATOR CLASS %I.%I\n    %sFOR TYPE %s USING %I FAMILY %I.%I AS\n    %s;',
              cls.nspname, cls.opcname, CASE WHEN cls.opcdefault THEN 'DEFAULT ' ELSE '' END,
              pg_catalog.format_type(cls.opcintype, NULL), cls.amname, fn.nspname, f.opfname,
              coalesce((SELECT string_agg(m.item, E',\n    ' ORDER BY m.part, m.pos)
                        FROM member m WHERE m.cls = cls.oid),
                       'STORAGE ' || pg_catalog.format_type(cls.opcintype, NULL))) AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM cls
JOIN pg_catalog.pg_roles r ON r.oid = cls.opcowner
JOIN pg_catalog.pg_opfamily f ON f.oid = cls.opcfamily
JOIN pg_catalog.pg_namespace fn ON fn.oid = f.opfnamespace
ORDER BY cls.nspname, cls.opcname, cls.amname
