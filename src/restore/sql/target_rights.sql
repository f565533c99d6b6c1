-- What a data-only load of some tables needs of the session's role, asked of the catalog without running
-- it. $1 and $2 side by side: a table (qualified name) once per column the load writes into it, with that
-- column's name, or once with NULL for a table written without a column list. One row per table that
-- exists: its owner (who may switch its triggers off), the role, whether row security applies to the role
-- there (the server refuses a `COPY ... FROM` then), and the columns the role may not insert into (a
-- `COPY ... FROM` needs INSERT on every column it writes; without a column list, on some column), as the
-- server's own checks of a COPY decide. Works on PostgreSQL 13 and later.
WITH wanted AS (
    SELECT u.t, u.c, pg_catalog.to_regclass(u.t) AS oid FROM unnest($1::text[], $2::text[]) AS u(t, c)
)
SELECT w.t AS table_name,
       pg_catalog.pg_get_userbyid(c.relowner)::text AS owner,
       current_user::text AS role,
       pg_catalog.row_security_active(w.oid) AS row_security,
       coalesce(pg_catalog.array_agg(w.c ORDER BY w.c)
                  FILTER (WHERE w.c IS NOT NULL AND NOT pg_catalog.has_column_privilege(w.oid, w.c, 'INSERT')),
                '{}') AS no_insert,
       pg_catalog.bool_or(w.c IS NULL) AND NOT pg_catalog.has_any_column_privilege(w.oid, 'INSERT') AS no_insert_at_all
FROM wanted w
JOIN pg_catalog.pg_class c ON c.oid = w.oid
GROUP BY w.t, w.oid, c.relowner
ORDER BY w.t
