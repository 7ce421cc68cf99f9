# shellcheck shell=bash
# Creates the plsnap capture account on the first start of the `mysql` service (empty data directory).
# The mysql image's entrypoint *sources* non-executable *.sh files in /docker-entrypoint-initdb.d, so
# docker_process_sql and mysql_note are available here (keep this file mode 0644: an executable one would be run
# in a child shell without them). A script rather than a .sql file because the password is read from the compose
# secret at run time: no password is ever written into this repository or an image.
#
# Grants: PROCESS shows every session in the processlist; SELECT on performance_schema is needed because on
# MySQL 8.0.22+ `source = "auto"` reads performance_schema.processlist (no global mutex).

plsnap_password="$(cat "${PLSNAP_PASSWORD_SECRET:-/run/secrets/plsnap_password}")"
# Quote for a SQL string literal: double every backslash, then every single quote.
plsnap_password="${plsnap_password//\\/\\\\}"
plsnap_password="${plsnap_password//\'/\'\'}"

mysql_note "Creating the plsnap capture user ('plsnap'@'%': PROCESS, SELECT ON performance_schema.*)"
docker_process_sql --database=mysql <<-EOSQL
	CREATE USER IF NOT EXISTS 'plsnap'@'%' IDENTIFIED BY '${plsnap_password}';
	GRANT PROCESS ON *.* TO 'plsnap'@'%';
	GRANT SELECT ON performance_schema.* TO 'plsnap'@'%';
EOSQL
unset plsnap_password
