-- Indexes that are not a constraint's (kind INDEX, post-data), and every partition index attached to a
-- parent index (kind INDEX ATTACH, post-data, `ALTER INDEX parent ATTACH PARTITION child;`), including
-- the indexes of PRIMARY KEY / UNIQUE / EXCLUDE constraints of partitions (constraints.sql creates those
-- indexes; the INDEX ATTACH row is then the only row of that index). Not the index of an exclusion
-- constraint's or WITHOUT OVERLAPS key's copy, which the server does not attach (constraints.sql has the
-- server make those copies).
-- Like pg_dump, leaves out indexes that are not ready (indisready false) and invalid indexes of
-- non-partitioned tables (leftovers of a failed CREATE INDEX CONCURRENTLY): pg_dump drops those silently,
-- so the coverage check must not count them (see all_objects.sql).
-- An INDEX row is followed by the INDEX ATTACH row of the same index (same classid/objid). `tablespace`
-- names the index's tablespace when it is not the database's default (the restore sets default_tablespace
-- around the statement, as pg_restore does, unless --no-tablespaces).
-- Works on PostgreSQL 13 and later (attstattarget >= 0 holds for a set target on 13..16, where the
-- default is -1, and on 17+, where it is NULL).
WITH idx AS (
    SELECT i.indexrelid, i.indrelid, i.indisclustered, i.indisreplident, i.indisexclusion, ic.relname AS idxname,
           ic.reltablespace, tc.relname AS tblname, tn.nspname AS tblschema, tc.relkind AS tblkind,
           EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                   WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                     AND c.contype IN ('p', 'u', 'x')) AS is_constraint
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
    JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
    WHERE tn.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND tn.nspname NOT LIKE 'pg\_temp\_%' AND tn.nspname NOT LIKE 'pg\_toast\_temp\_%'
      AND i.indisready
      AND (i.indisvalid OR tc.relkind = 'p')
)
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS classid,
       x.indexrelid AS objid,
       'INDEX'::text AS kind,
       x.tblschema AS schema,
       x.idxname::text AS name,
       NULL::text AS owner,
       'post-data'::text AS section,
       pg_catalog.pg_get_indexdef(x.indexrelid) || ';'
       || CASE WHEN x.indisclustered THEN
            pg_catalog.format(E'\nALTER TABLE %I.%I CLUSTER ON %I;', x.tblschema, x.tblname, x.idxname) ELSE '' END
       || COALESCE((SELECT pg_catalog.string_agg(
                        pg_catalog.format(E'\nALTER INDEX %I.%I ALTER COLUMN %s SET STATISTICS %s;',
                                          x.tblschema, x.idxname, a.attnum, a.attstattarget),
                        '' ORDER BY a.attnum)
                    FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = x.indexrelid AND a.attnum > 0 AND a.attstattarget >= 0), '')
       || CASE WHEN x.indisreplident THEN
            pg_catalog.format(E'\nALTER TABLE ONLY %I.%I REPLICA IDENTITY USING INDEX %I;',
                              x.tblschema, x.tblname, x.idxname) ELSE '' END
       AS "create",
       NULL::text[] AS acl,
       NULL::text[] AS acl_default,
       pg_catalog.pg_relation_size(x.indrelid) AS size,
       x.indrelid AS table_oid,
       ts.spcname::text AS tablespace
FROM idx x
LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid = x.reltablespace
WHERE NOT x.is_constraint
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid,
       x.indexrelid,
       'INDEX ATTACH',
       x.tblschema,
       x.idxname::text,
       NULL,
       'post-data',
       pg_catalog.format('ALTER INDEX %I.%I ATTACH PARTITION %I.%I;',
                         pn.nspname, pc.relname, x.tblschema, x.idxname),
       NULL,
       NULL,
       pg_catalog.pg_relation_size(x.indrelid),
       x.indrelid,
       NULL
FROM idx x
JOIN pg_catalog.pg_inherits inh ON inh.inhrelid = x.indexrelid
JOIN pg_catalog.pg_class pc ON pc.oid = inh.inhparent
JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
WHERE NOT x.indisexclusion
ORDER BY 2, 3
