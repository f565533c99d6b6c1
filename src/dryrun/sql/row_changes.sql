-- The rows this transaction has updated and deleted so far in each table of the user's schemas, by oid
-- (its own counters, kept while `track_counts` is on, the default), temporary tables left out; with
-- whether the table, or a table it is a partition or an inheritance child of (whose count takes its
-- rows in: `DELETE FROM parent` deletes them), is among $1 (text[], resolved through the search path),
-- those whose deleted rows are counted otherwise, $2, those whose updated rows are, and $3. A trigger or
-- a function can write any table: these name every table a statement changed without reading any of
-- them. From PostgreSQL 9.6.
WITH RECURSIVE up(relid, anc) AS (
    SELECT s.relid, s.relid FROM pg_catalog.pg_stat_xact_user_tables s
  UNION
    SELECT up.relid, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc
)
SELECT s.relid::int8 AS oid, s.relid::regclass::text AS name, s.n_tup_upd AS updated, s.n_tup_del AS deleted,
       s.n_tup_ins AS inserted,
       -- A partition's partitioned table at the top: an UPDATE of it moves rows between its partitions.
       (SELECT pg_catalog.pg_partition_root(c.oid)::oid::int8 FROM pg_catalog.pg_class c
         WHERE c.oid = s.relid AND c.relispartition) AS root,
       -- A materialized view's rows are derived: its refresh deletes and inserts nothing of the user's.
       coalesce((SELECT c.relkind = 'm' FROM pg_catalog.pg_class c WHERE c.oid = s.relid), false) AS derived,
       -- A name no longer resolves once its table is dropped: null, not counted.
       EXISTS (SELECT FROM up WHERE up.relid = s.relid
                 AND up.anc IN (SELECT pg_catalog.to_regclass(t) FROM pg_catalog.unnest($1::text[]) AS t))
         AS deletes_counted,
       EXISTS (SELECT FROM up WHERE up.relid = s.relid
                 AND up.anc IN (SELECT pg_catalog.to_regclass(t) FROM pg_catalog.unnest($2::text[]) AS t))
         AS updates_counted,
       -- Among $3, the tables the statement names (it writes them itself, not through a trigger).
       EXISTS (SELECT FROM up WHERE up.relid = s.relid
                 AND up.anc IN (SELECT pg_catalog.to_regclass(t) FROM pg_catalog.unnest($3::text[]) AS t))
         AS named
  FROM pg_catalog.pg_stat_xact_user_tables s
 WHERE s.schemaname !~ '^pg_temp_'
