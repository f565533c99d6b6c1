-- Every foreign key declared on a table (not the copies on its partitions), with the referencing and the
-- referenced table and whether the search path makes each visible: a dump that leaves out the rows of a
-- referenced table (`--exclude-table-data`) but keeps those of the referencing one warns of the key,
-- which such an archive's rows break on restore. Works on PostgreSQL 13 and later.
SELECT k.conname::text AS name,
       cn.nspname AS schema, c.relname::text AS table_name, pg_catalog.pg_table_is_visible(c.oid) AS visible,
       rn.nspname AS referenced_schema, r.relname::text AS referenced_name,
       pg_catalog.pg_table_is_visible(r.oid) AS referenced_visible
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
-- A key NOT VALID in the source (or NOT ENFORCED, 18's, which is never validated) is restored NOT VALID:
-- its rows are no problem.
WHERE k.contype = 'f' AND k.convalidated AND k.conparentid = 0 AND r.relkind = 'r' AND k.conrelid <> k.confrelid
ORDER BY 2, 3, 1
