-- Publications, PostgreSQL 13 and 14 (no row filters, column lists or schemas: publications_15.sql serves
-- 15 to 17, publications_18.sql 18 and later). All post-data:
-- * PUBLICATION (pg_publication, owner pubowner):
--     CREATE PUBLICATION p [FOR ALL TABLES] WITH (publish = '...', publish_via_partition_root = ...);
-- * PUBLICATION TABLE (pg_publication_rel, no owner):
--     ALTER PUBLICATION p ADD TABLE ONLY s.t;
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
       || ';',
       NULL,
       NULL,
       NULL,
       pr.prrelid
FROM pg_catalog.pg_publication_rel pr
JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2
