-- What PostgreSQL calls each object, for statements that name it (`COMMENT ON`, `ALTER ... OWNER TO`,
-- `GRANT`): pg_identify_object's type and schema-qualified identity. $1 and $2 are parallel arrays of
-- class and object OIDs. A procedure is named with the mode of every argument, OUT ones included, as
-- pg_dump names it: from 14 on `pr(integer,integer,integer)` matches both `pr(OUT int, IN int, IN int)`
-- and `pr(IN int, IN int, IN int)` ("procedure name is not unique"), `pr(IN integer, IN integer, IN integer)`
-- only the second. An aggregate without arguments keeps pg_identify_object's `agg()`, as GRANT wants it
-- (ALTER and COMMENT want `agg(*)`: the engine writes that). Works on PostgreSQL 13 and later.
SELECT o.classid, o.objid, i.type,
       CASE WHEN i.type = 'procedure' THEN coalesce(pr.identity, i.identity) ELSE i.identity END AS identity
FROM unnest($1::oid[], $2::oid[]) AS o(classid, objid)
CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) AS i
LEFT JOIN LATERAL (
    SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '('
           || coalesce((SELECT string_agg(CASE a.mode WHEN 'o' THEN 'OUT ' WHEN 'b' THEN 'INOUT '
                                                      WHEN 'v' THEN 'VARIADIC ' ELSE 'IN ' END
                                          || pg_catalog.format_type(a.type, NULL), ',' ORDER BY a.i)
                        FROM unnest(coalesce(p.proallargtypes, p.proargtypes::pg_catalog.oid[]), p.proargmodes)
                             WITH ORDINALITY AS a(type, mode, i)), '')
           || ')' AS identity
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE o.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = o.objid AND i.type = 'procedure'
) AS pr ON true
