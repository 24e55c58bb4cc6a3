#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if missing and runs a private cluster as a local process:
# data under $TEXTPULSE_VAR_DIR/pg, TCP on 127.0.0.1:$TEXTPULSE_PG_PORT only, never the system service.
# Idempotent: an existing cluster is reused, a running one is left alone. Creates the role and database.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/deploy/local/apt.sh"  # apt_get: waits for another apt/dpkg process instead of failing
var=${TEXTPULSE_VAR_DIR:-$repo/var}
port=${TEXTPULSE_PG_PORT:-55432}
db_name=${TEXTPULSE_PG_DATABASE:-textpulse}
mkdir -p "$var/pg" "$var/log" "$var/run"

if ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  echo "postgres: installing the server from Debian's packages"
  apt_get update -qq
  apt_get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# PostgreSQL refuses to run as root: run it as the 'postgres' user the package created.
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
  chown postgres: "$var/pg"
else
  as_pg=()
fi

data=$var/pg/data
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -w "$var/pg"; then
  # The repo sits where the postgres user cannot reach (e.g. under /root): keep the data beside it.
  data=/var/tmp/textpulse-pg/$(printf '%s' "$var" | sha1sum | cut -c1-12)
  mkdir -p "$data" && chown -R postgres: /var/tmp/textpulse-pg
  echo "postgres: $var is not reachable by the postgres user; data kept in $data"
fi
echo "$data" > "$var/pg/DATA_DIR"
pglog=$(dirname "$data")/postgres.log  # written by the postgres user, so kept beside its data
ln -sfn "$pglog" "$var/log/postgres.log"

if [ ! -f "$data/PG_VERSION" ]; then
  pwfile=$(mktemp) && echo postgres > "$pwfile" && chmod 644 "$pwfile"
  "${as_pg[@]}" "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$var/log/postgres-initdb.log"
  rm -f "$pwfile"
  cat >> "$data/postgresql.conf" <<CONF
# --- Textpulse local cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_buffers = 128MB
max_connections = 200
CONF
fi
# The port may change between runs; it is passed on the command line rather than written in the file.
if "${as_pg[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  echo "postgres: already running (data $data)"
else
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "postgres: port $port is taken by another process (another checkout's stack?); set TEXTPULSE_PG_PORT" >&2
    exit 1
  fi
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -l "$pglog" -o "-p $port" -w -t 60 start >/dev/null
  echo "postgres: started on 127.0.0.1:$port (data $data)"
fi
head -n 1 "$data/postmaster.pid" > "$var/run/postgres.pid"

export PGPASSWORD=postgres
psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA)
if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'textpulse'")" ]; then
  "${psql[@]}" -c "CREATE ROLE textpulse LOGIN CREATEDB PASSWORD 'textpulse'"
fi
if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db_name'")" ]; then
  "${psql[@]}" -c "CREATE DATABASE $db_name OWNER textpulse"
fi
