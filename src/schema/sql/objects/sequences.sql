-- Sequences (relkind S) outside the system schemas, PostgreSQL 13 and later. Rows:
--   SEQUENCE (pre-data): CREATE [UNLOGGED] SEQUENCE s.x [AS type] START WITH n INCREMENT BY n
--       MINVALUE n | NO MINVALUE  MAXVALUE n | NO MAXVALUE  CACHE n [CYCLE];
--     as pg_dump prints it (no AS for bigint, NO MIN/MAXVALUE for the type's defaults).
--   SEQUENCE OWNED BY (pre-data), a second row of a sequence with an 'a' dependency on a table column:
--     ALTER SEQUENCE s.x OWNED BY s.t.c;
--     It must run after the sequence's ALTER ... OWNER TO: OWNED BY requires the sequence and the table to have
--     the same owner. Through that 'a' dependency an owned sequence comes after its table, and the column
--     default using it (defaults.sql) after the sequence.
-- Identity sequences (an 'i' dependency on their column) are created by the table's CREATE TABLE: their SEQUENCE
-- row has create NULL (owner and ACL still apply). table_oid is the owning table for owned and identity
-- sequences (pg_dump -t takes them along with their table), else the sequence's own oid.
-- The sequence's current value is data, restored elsewhere.
WITH seq AS (
    SELECT c.* FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S'
      AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
),
owned AS (
    SELECT c.oid, c.relowner, n.nspname, c.relname,
           pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(tc.relname) || '.'
           || pg_catalog.quote_ident(ta.attname) AS qcol, tc.oid AS table_oid
    FROM seq c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
         AND d.objsubid = 0 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
         AND d.deptype = 'a'
    JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
    JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
    JOIN pg_catalog.pg_attribute ta ON ta.attrelid = d.refobjid AND ta.attnum = d.refobjsubid
)
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid AS classid,
       c.oid AS objid,
       'SEQUENCE'::text AS kind,
       n.nspname::text AS schema,
       c.relname::text AS name,
       pg_catalog.pg_get_userbyid(c.relowner)::text AS owner,
       'pre-data'::text AS section,
       CASE WHEN ident.refobjid IS NOT NULL THEN NULL
            ELSE 'CREATE ' || CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END || 'SEQUENCE '
                 || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) || chr(10)
                 || CASE WHEN s.seqtypid <> 'pg_catalog.int8'::pg_catalog.regtype
                         THEN '    AS ' || pg_catalog.format_type(s.seqtypid, NULL) || chr(10) ELSE '' END
                 || '    START WITH ' || s.seqstart || chr(10)
                 || '    INCREMENT BY ' || s.seqincrement || chr(10)
                 || CASE WHEN s.seqmin = CASE WHEN s.seqincrement > 0 THEN 1
                                              WHEN s.seqtypid = 'pg_catalog.int2'::pg_catalog.regtype THEN -32768
                                              WHEN s.seqtypid = 'pg_catalog.int4'::pg_catalog.regtype THEN -2147483648
                                              ELSE -9223372036854775808 END
                         THEN '    NO MINVALUE' ELSE '    MINVALUE ' || s.seqmin END || chr(10)
                 || CASE WHEN s.seqmax = CASE WHEN s.seqincrement < 0 THEN -1
                                              WHEN s.seqtypid = 'pg_catalog.int2'::pg_catalog.regtype THEN 32767
                                              WHEN s.seqtypid = 'pg_catalog.int4'::pg_catalog.regtype THEN 2147483647
                                              ELSE 9223372036854775807 END
                         THEN '    NO MAXVALUE' ELSE '    MAXVALUE ' || s.seqmax END || chr(10)
                 || '    CACHE ' || s.seqcache || CASE WHEN s.seqcycle THEN chr(10) || '    CYCLE' ELSE '' END || ';'
       END AS "create",
       c.relacl::text[] AS acl,
       coalesce((SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip
                 WHERE ip.objoid = c.oid AND ip.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ip.objsubid = 0),
                pg_catalog.acldefault('s', c.relowner))::text[] AS acl_default,
       NULL::int8 AS size,
       coalesce(ident.refobjid, own.refobjid, c.oid) AS table_oid
FROM seq c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN LATERAL (
    SELECT d.refobjid, d.refobjsubid FROM pg_catalog.pg_depend d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.objsubid = 0
       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0 AND d.deptype = 'i'
     LIMIT 1) ident ON true
LEFT JOIN LATERAL (
    SELECT d.refobjid, d.refobjsubid FROM pg_catalog.pg_depend d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.objsubid = 0
       AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0 AND d.deptype = 'a'
     LIMIT 1) own ON true
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::oid,
       o.oid,
       'SEQUENCE OWNED BY',
       o.nspname::text,
       o.relname::text,
       NULL,
       'pre-data',
       'ALTER SEQUENCE ' || pg_catalog.quote_ident(o.nspname) || '.' || pg_catalog.quote_ident(o.relname)
       || ' OWNED BY ' || o.qcol || ';',
       NULL,
       NULL,
       NULL,
       o.table_oid
FROM owned o
ORDER BY 2, 3
