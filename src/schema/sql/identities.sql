-- What PostgreSQL calls each object, for statements that name it (`COMMENT ON`, `ALTER ... OWNER TO`,
-- `GRANT`): pg_identify_object's type and schema-qualified identity. $1 and $2 are parallel arrays of
-- class and object OIDs. Works on PostgreSQL 13 and later.
SELECT o.classid, o.objid, i.type, i.identity
FROM unnest($1::oid[], $2::oid[]) AS o(classid, objid)
CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) AS i
