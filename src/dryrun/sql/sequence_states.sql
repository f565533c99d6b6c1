-- Every sequence the session can read, with the last value it gave (NULL when it gives its start value
-- next: never used, or restarted): compared before and after the rehearsal, the sequences the migration
-- made or moved back. Other sessions' temporary sequences are left out.
SELECT q.seqrelid::int8 AS oid,
       CASE WHEN pg_catalog.has_sequence_privilege(q.seqrelid, 'SELECT,USAGE')
            THEN pg_catalog.pg_sequence_last_value(q.seqrelid) END AS last_value
FROM pg_catalog.pg_sequence q
JOIN pg_catalog.pg_class c ON c.oid = q.seqrelid
WHERE NOT pg_catalog.pg_is_other_temp_schema(c.relnamespace)
