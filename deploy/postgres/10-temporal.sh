#!/bin/sh
# Temporal on a role and databases of its own (docker-compose.yml): the role `temporal`, its
# password from the secret TEMPORAL_DB_PASSWORD_FILE names, owning `temporal` and
# `temporal_visibility` and everything in them. The postgres image runs this on the first
# start of an empty volume; on an existing one run it once by hand (README "Production"):
#   docker compose exec postgresql sh /docker-entrypoint-initdb.d/10-temporal.sh
# It is safe to run again: it creates what is missing, sets the password anew and hands over
# what an earlier setup left to another owner.
set -eu

run() {
	psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" --dbname "$1"
}

# The password goes from the file to the server without a command line or the environment.
run "$POSTGRES_DB" <<'SQL'
\getenv password_file TEMPORAL_DB_PASSWORD_FILE
\set password `cat :'password_file'`
SELECT format('CREATE ROLE temporal LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'temporal') \gexec
SELECT format('ALTER ROLE temporal WITH LOGIN PASSWORD %L', :'password') \gexec
\unset password
SELECT format('CREATE DATABASE %I OWNER temporal', name)
FROM unnest(ARRAY['temporal', 'temporal_visibility']) AS name
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = name) \gexec
ALTER DATABASE temporal OWNER TO temporal;
ALTER DATABASE temporal_visibility OWNER TO temporal;
SQL

# Tables an earlier setup made as another role (the superuser) become Temporal's; their
# sequences follow them.
for database in temporal temporal_visibility; do
	run "$database" <<'SQL'
SELECT format('ALTER %s %s OWNER TO temporal',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
              c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')
  AND pg_get_userbyid(c.relowner) <> 'temporal'
  AND NOT (c.relkind = 'S' AND EXISTS (  -- a sequence owned by a column moves with its table
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
\gexec
SQL
done
