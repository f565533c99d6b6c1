-- Every dependency between objects of the current database that orders their creation: normal, auto,
-- internal, partition and extension memberships. One row per pg_depend entry, sub-object ids dropped.
-- Then the orders pg_depend does not record, as normal dependencies (rows only from 18 on), between NOT NULL
-- constraints that not_null_constraints.sql adds after the data: a table's own NOT VALID one comes before its
-- ancestors' on the same column, whose ALTER TABLE would otherwise give the table an inherited one first and
-- its own could then not be added ("a not-null constraint ... already exists"); one the table only inherits
-- from NOT VALID parents is made by their statement and follows it. Works on PostgreSQL 13 and later.
WITH RECURSIVE not_null AS (
    -- The NOT NULL constraints made or validated after the data: NOT VALID ones, and those only inherited.
    SELECT k.oid, k.conrelid, k.conislocal, k.convalidated, a.attname
    FROM pg_catalog.pg_constraint k
    JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
    WHERE k.contype = 'n' AND (NOT k.convalidated OR NOT k.conislocal)
), ancestry(child, ancestor) AS (
    SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
     WHERE i.inhrelid IN (SELECT conrelid FROM not_null WHERE conislocal)
    UNION
    SELECT x.child, i.inhparent FROM ancestry x JOIN pg_catalog.pg_inherits i ON i.inhrelid = x.ancestor
)
SELECT DISTINCT d.classid, d.objid, d.refclassid, d.refobjid, d.deptype::text AS deptype
FROM pg_catalog.pg_depend d
WHERE d.deptype IN ('n', 'a', 'i', 'P', 'S', 'e', 'x')
  AND d.classid <> 0
  AND d.refclassid <> 0
  AND d.objid >= 16384
UNION ALL
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid, up.oid,
       'pg_catalog.pg_constraint'::pg_catalog.regclass::oid, own.oid, 'n'
FROM not_null own
JOIN ancestry x ON x.child = own.conrelid
JOIN not_null up ON up.conrelid = x.ancestor AND up.attname = own.attname AND NOT up.convalidated
WHERE own.conislocal
UNION ALL
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid, copy.oid,
       'pg_catalog.pg_constraint'::pg_catalog.regclass::oid, up.oid, 'n'
FROM not_null copy
JOIN pg_catalog.pg_inherits i ON i.inhrelid = copy.conrelid
JOIN not_null up ON up.conrelid = i.inhparent AND up.attname = copy.attname AND NOT up.convalidated
WHERE NOT copy.conislocal
  -- A copy that a valid parent constraint gives is made with its table, before the data.
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits pi
                  JOIN pg_catalog.pg_attribute pa ON pa.attrelid = pi.inhparent AND pa.attname = copy.attname
                  JOIN pg_catalog.pg_constraint pk ON pk.conrelid = pa.attrelid AND pk.contype = 'n'
                                                  AND pk.conkey = ARRAY[pa.attnum]
                  WHERE pi.inhrelid = copy.conrelid AND pk.convalidated AND NOT pk.connoinherit)
