-- Domains (kind DOMAIN): `CREATE DOMAIN s.d AS type [COLLATE c] [DEFAULT e] [NOT NULL] CONSTRAINT n CHECK
-- (...) ...;`, and one row per domain constraint (pg_constraint, contypid <> 0) of kind CHECK CONSTRAINT:
-- validated constraints are written inline in CREATE DOMAIN (create NULL on their own row, section
-- pre-data), NOT VALID ones are their own `ALTER DOMAIN s.d ADD CONSTRAINT n ... NOT VALID;` in post-data,
-- as pg_dump does. From PostgreSQL 17 on, a domain's NOT NULL is a pg_constraint row of contype 'n' with a
-- name: it is written `CONSTRAINT n NOT NULL` (a syntax every version accepts) and returned like the inline
-- checks; before 17 there is no such row and typnotnull alone gives ` NOT NULL`. Works on PostgreSQL 13
-- and later.
WITH dom AS (
    SELECT t.*, n.nspname, r.rolname, format('%I.%I', n.nspname, t.typname) AS qname
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    JOIN pg_catalog.pg_roles r ON r.oid = t.typowner
    WHERE t.typtype = 'd'
      AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND t.oid >= 16384
),
con AS (
    SELECT c.oid, c.conname, c.contype, c.convalidated, c.contypid,
           pg_catalog.pg_get_constraintdef(c.oid) AS def
    FROM pg_catalog.pg_constraint c
    JOIN dom ON dom.oid = c.contypid
),
-- Each domain's validated CHECK constraints, written inline, grouped by domain (a subquery over con for each
-- domain would be quadratic in the number of domains).
inline AS (
    SELECT con.contypid,
           string_agg(format(E'\n\tCONSTRAINT %I %s', con.conname, con.def), '' ORDER BY con.conname) AS checks
    FROM con
    WHERE con.contype = 'c' AND con.convalidated
    GROUP BY con.contypid
)
SELECT 'pg_catalog.pg_type'::regclass::oid AS classid,
       dom.oid AS objid,
       'DOMAIN'::text AS kind,
       dom.nspname::text AS schema,
       dom.typname::text AS name,
       dom.rolname::text AS owner,
       'pre-data'::text AS section,
       format('CREATE DOMAIN %s AS %s', dom.qname, pg_catalog.format_type(dom.typbasetype, dom.typtypmod))
       || CASE WHEN dom.typcollation <> bt.typcollation
               THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END
       || CASE WHEN dom.typdefaultbin IS NOT NULL
               THEN ' DEFAULT ' || pg_catalog.pg_get_expr(dom.typdefaultbin, 0)
               WHEN dom.typdefault IS NOT NULL
               THEN ' DEFAULT ' || dom.typdefault ELSE '' END
       || CASE WHEN nn.oid IS NOT NULL AND nn.convalidated THEN format(' CONSTRAINT %I NOT NULL', nn.conname)
               WHEN nn.oid IS NULL AND dom.typnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(ck.checks, '')
       || ';' AS "create",
       dom.typacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = dom.oid AND ip.classoid = 'pg_catalog.pg_type'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('T', dom.typowner))::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM dom
JOIN pg_catalog.pg_type bt ON bt.oid = dom.typbasetype
LEFT JOIN pg_catalog.pg_collation co ON co.oid = dom.typcollation
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
LEFT JOIN con nn ON nn.contypid = dom.oid AND nn.contype = 'n'
LEFT JOIN inline ck ON ck.contypid = dom.oid
UNION ALL
SELECT 'pg_catalog.pg_constraint'::regclass::oid,
       con.oid,
       'CHECK CONSTRAINT',
       dom.nspname::text,
       format('%s %s', dom.typname, con.conname),
       NULL,
       CASE WHEN con.convalidated THEN 'pre-data' ELSE 'post-data' END,
       CASE WHEN con.convalidated THEN NULL
            ELSE format('ALTER DOMAIN %s ADD CONSTRAINT %I %s;', dom.qname, con.conname, con.def) END,
       NULL,
       NULL,
       NULL,
       NULL
FROM con
JOIN dom ON dom.oid = con.contypid
ORDER BY 4, 5
