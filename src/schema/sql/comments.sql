-- Comments on objects of the current database (not on system objects), with what PostgreSQL calls
-- the object, columns included. Works on PostgreSQL 13 and later.
SELECT d.classoid AS classid, d.objoid AS objid, d.objsubid, i.type, i.identity, d.description
FROM pg_catalog.pg_description d
CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid) AS i
WHERE (d.objoid >= 16384 OR (d.classoid = 'pg_catalog.pg_namespace'::regclass AND d.objoid = 2200))
  AND i.identity IS NOT NULL
ORDER BY d.classoid, d.objoid, d.objsubid
