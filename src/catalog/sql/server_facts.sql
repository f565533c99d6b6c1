-- Facts about the server and database a dump reads: version, encoding, integer datetimes.
-- One row. Works on PostgreSQL 13 and later.
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int4 AS version_num,
       current_database() AS database,
       current_setting('server_encoding') AS encoding,
       current_setting('integer_datetimes') = 'on' AS integer_datetimes
