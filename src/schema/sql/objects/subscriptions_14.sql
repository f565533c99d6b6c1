-- Subscriptions of the current database, PostgreSQL 14 (binary, streaming as a boolean).
-- Kind SUBSCRIPTION, post-data, owner subowner, as pg_dump prints it: created disabled and without
-- connecting (connect = false, which also means enabled = false, create_slot = false, copy_data = false),
-- with every other option the catalog records spelled out:
--   CREATE SUBSCRIPTION s CONNECTION '...' PUBLICATION p, ... WITH (connect = false, slot_name = '...' | NONE, ...);
-- Reading pg_subscription.subconninfo needs a superuser; restoring needs a superuser (or, on 16+, a
-- member of pg_create_subscription). The subscription's enabled state, the state of its tables and its
-- replication origin's progress are not carried over (pg_dump does not carry them either).
SELECT 'pg_catalog.pg_subscription'::pg_catalog.regclass::oid AS classid,
       s.oid AS objid,
       'SUBSCRIPTION'::text AS kind,
       NULL::text AS schema,
       s.subname::text AS name,
       pg_catalog.pg_get_userbyid(s.subowner)::text AS owner,
       'post-data'::text AS section,
       pg_catalog.format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %s WITH (connect = false, slot_name = %s',
                         s.subname, s.subconninfo,
                         (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p.name), ', ' ORDER BY p.ord)
                          FROM pg_catalog.unnest(s.subpublications) WITH ORDINALITY AS p(name, ord)),
                         COALESCE(pg_catalog.quote_literal(s.subslotname), 'NONE'))
       || ', binary = ' || CASE WHEN s.subbinary THEN 'true' ELSE 'false' END
       || ', streaming = ' || CASE s.substream::text WHEN 'true' THEN 'on' WHEN 't' THEN 'on'
                                                    WHEN 'p' THEN 'parallel' ELSE 'off' END
       || ', synchronous_commit = ' || pg_catalog.quote_literal(s.subsynccommit)
       || ');' AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_subscription s
WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
ORDER BY s.oid
