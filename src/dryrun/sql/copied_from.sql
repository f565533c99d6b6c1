-- Tables other than $1 that have a column named $2 of the same kind of type (text, number, date...) as
-- $1.$2, a primary key of one column, and at most $3 rows (reltuples): where a dropped column may be a
-- copy kept of (`threads.teamid`, the `teamid` of the channel `threads.channelid` names), which the
-- migration has not written. Their key
-- column with each; the biggest first, at most five. User schemas only. Works on PostgreSQL 13 and later.
WITH dropped AS (
    SELECT b.typcategory
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    JOIN pg_catalog.pg_type b ON b.oid = COALESCE(NULLIF(t.typbasetype, 0), t.oid)
    WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
)
SELECT c.oid::pg_catalog.regclass::text AS name, k.attname::text AS key
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_type b ON b.oid = COALESCE(NULLIF(t.typbasetype, 0), t.oid)
JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1
JOIN pg_catalog.pg_attribute k ON k.attrelid = c.oid AND k.attnum = i.indkey[0]
WHERE a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
  AND c.oid IS DISTINCT FROM pg_catalog.to_regclass($1)
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND c.reltuples <= $3::int8
  -- Not a table this transaction wrote: values moved there are the moved ones (`sql/written.sql`).
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_xact_user_tables s
                  WHERE s.relid = c.oid AND s.n_tup_ins + s.n_tup_upd > 0)
  AND b.typcategory = (SELECT typcategory FROM dropped)
ORDER BY c.reltuples DESC, 1
LIMIT 5
