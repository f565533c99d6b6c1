-- Publications, PostgreSQL 18 and later (as publications_15.sql, plus pubgencols: publish_generated_columns).
-- All post-data:
-- * PUBLICATION (pg_publication, owner pubowner):
--     CREATE PUBLICATION p [FOR ALL TABLES] WITH (publish = '...', publish_via_partition_root = ...,
--       publish_generated_columns = none|stored);
-- * PUBLICATION TABLE (pg_publication_rel, no owner):
--     ALTER PUBLICATION p ADD TABLE ONLY s.t [(cols)] [WHERE (...)];
-- * PUBLICATION TABLES IN SCHEMA (pg_publication_namespace, no owner):
--     ALTER PUBLICATION p ADD TABLES IN SCHEMA s;
SELECT 'pg_catalog.pg_publication'::pg_catalog.regclass::oid AS classid,
       p.oid AS objid,
       'PUBLICATION'::text AS kind,
       NULL::text AS schema,
       p.pubname::text AS name,
       pg_catalog.pg_get_userbyid(p.pubowner)::text AS owner,
       'post-data'::text AS section,
       pg_catalog.format('CREATE PUBLICATION %I', p.pubname)
       || CASE WHEN p.puballtables THEN ' FOR ALL TABLES' ELSE '' END
       || ' WITH (publish = '
       || pg_catalog.quote_literal(pg_catalog.concat_ws(', ',
              CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
              CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END))
       || ', publish_via_partition_root = ' || CASE WHEN p.pubviaroot THEN 'true' ELSE 'false' END
       || ', publish_generated_columns = ' || CASE WHEN p.pubgencols = 's' THEN 'stored' ELSE 'none' END
       || ');' AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_publication p
UNION ALL
SELECT 'pg_catalog.pg_publication_rel'::pg_catalog.regclass::oid,
       pr.oid,
       'PUBLICATION TABLE',
       n.nspname::text,
       p.pubname || ' ' || c.relname,
       NULL,
       'post-data',
       pg_catalog.format('ALTER PUBLICATION %I ADD TABLE ONLY %I.%I', p.pubname, n.nspname, c.relname)
       || CASE WHEN pr.prattrs IS NOT NULL THEN
            ' (' || (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord)
                     FROM pg_catalog.unnest(pr.prattrs::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum = k.attnum) || ')'
          ELSE '' END
       || CASE WHEN pr.prqual IS NOT NULL THEN
            ' WHERE (' || pg_catalog.pg_get_expr(pr.prqual, pr.prrelid) || ')' ELSE '' END
       || ';',
       NULL,
       NULL,
       NULL,
       pr.prrelid
FROM pg_catalog.pg_publication_rel pr
JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
UNION ALL
SELECT 'pg_catalog.pg_publication_namespace'::pg_catalog.regclass::oid,
       pn.oid,
       'PUBLICATION TABLES IN SCHEMA',
       n.nspname::text,
       p.pubname || ' ' || n.nspname,
       NULL,
       'post-data',
       pg_catalog.format('ALTER PUBLICATION %I ADD TABLES IN SCHEMA %I;', p.pubname, n.nspname),
       NULL,
       NULL,
       NULL,
       NULL
FROM pg_catalog.pg_publication_namespace pn
JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid
JOIN pg_catalog.pg_namespace n ON n.oid = pn.pnnspid
ORDER BY 1, 2
