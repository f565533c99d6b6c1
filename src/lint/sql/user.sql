-- The roles `CURRENT_USER` and `SESSION_USER` name in the session lint reads the facts in (what `DROP
-- OWNED BY CURRENT_USER` drops, when the migration runs as the same role). Every version.
SELECT current_user::text AS current_user, session_user::text AS session_user
