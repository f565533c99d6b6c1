-- The user objects of catalogs that PostgreSQL 15 added, as in all_objects.sql. Works on 15 and later.
SELECT 'pg_catalog.pg_publication_namespace'::regclass::oid AS classid, oid AS objid,
       pg_catalog.pg_describe_object('pg_catalog.pg_publication_namespace'::regclass, oid, 0) AS description,
       (pg_catalog.pg_identify_object('pg_catalog.pg_publication_namespace'::regclass, oid, 0)).schema AS schema
FROM pg_catalog.pg_publication_namespace
WHERE oid >= 16384
