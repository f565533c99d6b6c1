-- Every user object of the current database that a schema dump must reproduce: one row per catalog entry
-- (not sub-objects such as columns), with its description for messages. The engine checks these against
-- what the object queries returned, after leaving out extension members and objects that exist only as
-- part of another (an `i` dependency). Large objects are data. Works on PostgreSQL 13 and later; 15 and
-- later add all_objects_15.sql.
WITH temp_schemas AS (
    SELECT oid FROM pg_catalog.pg_namespace WHERE nspname ~ '^pg_(toast_)?temp_'
), temp_tables AS (
    SELECT oid FROM pg_catalog.pg_class WHERE relpersistence = 't'
), user_objects(classid, objid) AS (
    SELECT 'pg_catalog.pg_namespace'::regclass::oid, oid FROM pg_catalog.pg_namespace
     WHERE nspname NOT IN ('information_schema') AND nspname !~ '^pg_'
  UNION ALL SELECT 'pg_catalog.pg_class'::regclass::oid, oid FROM pg_catalog.pg_class
     WHERE relkind <> 't' AND relpersistence <> 't' AND relnamespace <> 'pg_toast'::regnamespace
       -- An index that a failed CREATE INDEX CONCURRENTLY left invalid is not dumped, as pg_dump has it.
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
                       WHERE i.indexrelid = pg_class.oid AND (NOT i.indisready OR (NOT i.indisvalid AND t.relkind <> 'p')))
  UNION ALL SELECT 'pg_catalog.pg_type'::regclass::oid, oid FROM pg_catalog.pg_type
     WHERE typnamespace NOT IN (SELECT oid FROM temp_schemas)
  UNION ALL SELECT 'pg_catalog.pg_proc'::regclass::oid, oid FROM pg_catalog.pg_proc
     WHERE pronamespace NOT IN (SELECT oid FROM temp_schemas)
  UNION ALL SELECT 'pg_catalog.pg_constraint'::regclass::oid, oid FROM pg_catalog.pg_constraint
     WHERE connamespace NOT IN (SELECT oid FROM temp_schemas)
  UNION ALL SELECT 'pg_catalog.pg_attrdef'::regclass::oid, oid FROM pg_catalog.pg_attrdef
     WHERE adrelid NOT IN (SELECT oid FROM temp_tables)
  UNION ALL SELECT 'pg_catalog.pg_trigger'::regclass::oid, oid FROM pg_catalog.pg_trigger
     WHERE tgrelid NOT IN (SELECT oid FROM temp_tables)
  UNION ALL SELECT 'pg_catalog.pg_rewrite'::regclass::oid, oid FROM pg_catalog.pg_rewrite
     WHERE ev_class NOT IN (SELECT oid FROM temp_tables)
  UNION ALL SELECT 'pg_catalog.pg_policy'::regclass::oid, oid FROM pg_catalog.pg_policy
     WHERE polrelid NOT IN (SELECT oid FROM temp_tables)
  UNION ALL SELECT 'pg_catalog.pg_collation'::regclass::oid, oid FROM pg_catalog.pg_collation
  UNION ALL SELECT 'pg_catalog.pg_conversion'::regclass::oid, oid FROM pg_catalog.pg_conversion
  UNION ALL SELECT 'pg_catalog.pg_cast'::regclass::oid, oid FROM pg_catalog.pg_cast
  UNION ALL SELECT 'pg_catalog.pg_transform'::regclass::oid, oid FROM pg_catalog.pg_transform
  UNION ALL SELECT 'pg_catalog.pg_language'::regclass::oid, oid FROM pg_catalog.pg_language
  UNION ALL SELECT 'pg_catalog.pg_am'::regclass::oid, oid FROM pg_catalog.pg_am
  UNION ALL SELECT 'pg_catalog.pg_opclass'::regclass::oid, oid FROM pg_catalog.pg_opclass
  UNION ALL SELECT 'pg_catalog.pg_opfamily'::regclass::oid, oid FROM pg_catalog.pg_opfamily
  UNION ALL SELECT 'pg_catalog.pg_operator'::regclass::oid, oid FROM pg_catalog.pg_operator
     -- A shell operator that another operator names as commutator or negator is made by that one's
     -- statement; only a shell nobody names is lost.
     WHERE NOT (oprcode = 0 AND EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
                                         WHERE o.oprcom = pg_operator.oid OR o.oprnegate = pg_operator.oid))
  UNION ALL SELECT 'pg_catalog.pg_ts_parser'::regclass::oid, oid FROM pg_catalog.pg_ts_parser
  UNION ALL SELECT 'pg_catalog.pg_ts_template'::regclass::oid, oid FROM pg_catalog.pg_ts_template
  UNION ALL SELECT 'pg_catalog.pg_ts_dict'::regclass::oid, oid FROM pg_catalog.pg_ts_dict
  UNION ALL SELECT 'pg_catalog.pg_ts_config'::regclass::oid, oid FROM pg_catalog.pg_ts_config
  UNION ALL SELECT 'pg_catalog.pg_foreign_data_wrapper'::regclass::oid, oid FROM pg_catalog.pg_foreign_data_wrapper
  UNION ALL SELECT 'pg_catalog.pg_foreign_server'::regclass::oid, oid FROM pg_catalog.pg_foreign_server
  UNION ALL SELECT 'pg_catalog.pg_user_mapping'::regclass::oid, umid FROM pg_catalog.pg_user_mappings
  UNION ALL SELECT 'pg_catalog.pg_publication'::regclass::oid, oid FROM pg_catalog.pg_publication
  UNION ALL SELECT 'pg_catalog.pg_publication_rel'::regclass::oid, oid FROM pg_catalog.pg_publication_rel
  UNION ALL SELECT 'pg_catalog.pg_subscription'::regclass::oid, oid FROM pg_catalog.pg_subscription
     WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  UNION ALL SELECT 'pg_catalog.pg_event_trigger'::regclass::oid, oid FROM pg_catalog.pg_event_trigger
  UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::regclass::oid, oid FROM pg_catalog.pg_statistic_ext
  UNION ALL SELECT 'pg_catalog.pg_extension'::regclass::oid, oid FROM pg_catalog.pg_extension
  UNION ALL SELECT 'pg_catalog.pg_default_acl'::regclass::oid, oid FROM pg_catalog.pg_default_acl
)
SELECT u.classid, u.objid, pg_catalog.pg_describe_object(u.classid, u.objid, 0) AS description,
       (pg_catalog.pg_identify_object(u.classid, u.objid, 0)).schema AS schema
FROM user_objects u
WHERE u.objid >= 16384
