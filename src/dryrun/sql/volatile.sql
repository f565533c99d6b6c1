-- Whether any function named in $1 (text[], names without schema) is volatile, as the planner would
-- find the default of a new column calling it: an overloaded name counts when any of its functions is.
-- From PostgreSQL 9.6.
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.proname = ANY ($1) AND p.provolatile = 'v') AS volatile
