-- Operator families (kind OPERATOR FAMILY): `CREATE OPERATOR FAMILY s.f USING am;` followed, when the
-- family has members that belong to no operator class (pg_amop/pg_amproc rows whose pg_depend parent is
-- the family itself), by one `ALTER OPERATOR FAMILY s.f USING am ADD OPERATOR n op(type,type) [FOR ORDER
-- BY s.f], ..., FUNCTION n (type, type) f(args), ...;`, as pg_dump writes them in the family's entry.
-- Every family is returned, also the one CREATE OPERATOR CLASS made implicitly (operator_classes.sql
-- always names its FAMILY), as pg_dump does. Members are listed in the source's physical order, so that
-- the copy's catalog holds them in the same order and pg_dump (which sorts by strategy or support number
-- only) prints them the same way. Members are not returned: each depends on its family or
-- class ('a'/'i') and is restored with it. Works on PostgreSQL 13 and later.
WITH fam AS (
    SELECT f.oid, f.opfname, f.opfowner, n.nspname, am.amname,
           format('%I.%I USING %I', n.nspname, f.opfname, am.amname) AS qname
    FROM pg_catalog.pg_opfamily f
    JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace
    JOIN pg_catalog.pg_am am ON am.oid = f.opfmethod
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND f.oid >= 16384
),
loose AS (
    SELECT ao.amopfamily AS fam, 1 AS part, ao.ctid AS pos,
           format('OPERATOR %s %s', ao.amopstrategy, ao.amopopr::pg_catalog.regoperator::text)
           || CASE WHEN ao.amoppurpose = 'o' THEN format(' FOR ORDER BY %I.%I', sn.nspname, sf.opfname) ELSE '' END
           AS item
    FROM pg_catalog.pg_amop ao
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_amop'::regclass AND d.objid = ao.oid
                               AND d.refclassid = 'pg_catalog.pg_opfamily'::regclass AND d.refobjid = ao.amopfamily
    LEFT JOIN pg_catalog.pg_opfamily sf ON sf.oid = ao.amopsortfamily
    LEFT JOIN pg_catalog.pg_namespace sn ON sn.oid = sf.opfnamespace
    UNION ALL
    SELECT ap.amprocfamily, 2, ap.ctid,
           format('FUNCTION %s (%s, %s) %s', ap.amprocnum, pg_catalog.format_type(ap.amproclefttype, NULL),
                  pg_catalog.format_type(ap.amprocrighttype, NULL), ap.amproc::pg_catalog.regprocedure::text)
    FROM pg_catalog.pg_amproc ap
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_amproc'::regclass AND d.objid = ap.oid
                               AND d.refclassid = 'pg_catalog.pg_opfamily'::regclass AND d.refobjid = ap.amprocfamily
)
SELECT 'pg_catalog.pg_opfamily'::regclass::oid AS classid,
       fam.oid AS objid,
       'OPERATOR FAMILY'::text AS kind,
       fam.nspname::text AS schema,
       fam.opfname::text AS name,
       r.rolname::text AS owner,
       'pre-data'::text AS section,
       format('CREATE OPERATOR FAMILY %s;', fam.qname)
       || coalesce((SELECT format(E'\nALTER OPERATOR FAMILY %s ADD\n    %s;', fam.qname,
                                  string_agg(l.item, E',\n    ' ORDER BY l.part, l.pos))
                    FROM loose l WHERE l.fam = fam.oid HAVING count(*) > 0), '') AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM fam
JOIN pg_catalog.pg_roles r ON r.oid = fam.opfowner
ORDER BY fam.nspname, fam.opfname, fam.amname
