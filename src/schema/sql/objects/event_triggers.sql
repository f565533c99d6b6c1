-- Event triggers (kind EVENT TRIGGER, post-data as pg_dump files them, owner evtowner):
--   CREATE EVENT TRIGGER e ON event [WHEN TAG IN ('...', ...)] EXECUTE FUNCTION s.f();
--   plus ALTER EVENT TRIGGER e DISABLE | ENABLE REPLICA | ENABLE ALWAYS; for evtenabled other than 'O'.
-- Works on PostgreSQL 13 and later.
SELECT 'pg_catalog.pg_event_trigger'::pg_catalog.regclass::oid AS classid,
       e.oid AS objid,
       'EVENT TRIGGER'::text AS kind,
       NULL::text AS schema,
       e.evtname::text AS name,
       pg_catalog.pg_get_userbyid(e.evtowner)::text AS owner,
       'post-data'::text AS section,
       pg_catalog.format('CREATE EVENT TRIGGER %I ON %I', e.evtname, e.evtevent)
       || CASE WHEN e.evttags IS NOT NULL THEN
            E'\n         WHEN TAG IN (' || (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(tag), ', ' ORDER BY ord)
                                          FROM pg_catalog.unnest(e.evttags) WITH ORDINALITY AS x(tag, ord)) || ')'
          ELSE '' END
       || pg_catalog.format(E'\n   EXECUTE FUNCTION %I.%I();', fn.nspname, f.proname)
       || CASE WHEN e.evtenabled <> 'O' THEN
            pg_catalog.format(E'\nALTER EVENT TRIGGER %I %s;', e.evtname,
                              CASE e.evtenabled WHEN 'D' THEN 'DISABLE'
                                                WHEN 'R' THEN 'ENABLE REPLICA'
                                                WHEN 'A' THEN 'ENABLE ALWAYS'
                                                ELSE 'ENABLE' END)
          ELSE '' END AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       NULL::int8 AS size,
       NULL::oid AS table_oid
FROM pg_catalog.pg_event_trigger e
JOIN pg_catalog.pg_proc f ON f.oid = e.evtfoid
JOIN pg_catalog.pg_namespace fn ON fn.oid = f.pronamespace
ORDER BY e.oid
