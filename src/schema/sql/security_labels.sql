-- Security labels on objects of the current database, with the provider and what PostgreSQL calls the
-- object. Works on PostgreSQL 13 and later.
SELECT l.classoid AS classid, l.objoid AS objid, l.objsubid, l.provider, i.type, i.identity, l.label
FROM pg_catalog.pg_seclabel l
CROSS JOIN LATERAL pg_catalog.pg_identify_object(l.classoid, l.objoid, l.objsubid) AS i
WHERE l.objoid >= 16384 OR (l.classoid = 'pg_catalog.pg_namespace'::regclass AND l.objoid = 2200)
ORDER BY l.classoid, l.objoid, l.objsubid, l.provider
