-- How many large objects there are and roughly how many bytes they hold, for planning and progress.
-- One row. Works on PostgreSQL 13 and later.
SELECT count(*)::int8 AS count,
       (SELECT pg_catalog.pg_relation_size('pg_catalog.pg_largeobject'))::int8 AS bytes
FROM pg_catalog.pg_largeobject_metadata
