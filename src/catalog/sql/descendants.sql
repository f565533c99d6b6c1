-- Every table that is a partition or an inheritance child of another, with each of its ancestors (at any
-- level) and whether the search path makes each visible: `--table-and-children` and its exclusions take
-- a matched table's descendants, and a dump warns of a parent it takes without them. Partitioned indexes
-- are in pg_inherits too: only tables (plain, partitioned, foreign) are followed. Works on PostgreSQL 13
-- and later.
WITH RECURSIVE up(child, ancestor) AS (
    SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
    UNION
    SELECT up.child, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.ancestor
)
SELECT cn.nspname AS schema, c.relname::text AS name, pg_catalog.pg_table_is_visible(c.oid) AS visible,
       an.nspname AS ancestor_schema, a.relname::text AS ancestor_name,
       pg_catalog.pg_table_is_visible(a.oid) AS ancestor_visible, a.relkind = 'p' AS ancestor_partitioned
FROM up
JOIN pg_catalog.pg_class c ON c.oid = up.child
JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class a ON a.oid = up.ancestor
JOIN pg_catalog.pg_namespace an ON an.oid = a.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND a.relkind IN ('r', 'p', 'f')
ORDER BY 4, 5, 1, 2
