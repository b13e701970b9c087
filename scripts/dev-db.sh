#!/usr/bin/env bash
# Development database: PostgreSQL behind PgBouncer in transaction pool mode.
#
#   scripts/dev-db.sh up      start it (idempotent); waits until PgBouncer answers
#   scripts/dev-db.sh down    stop what `up` started
#   scripts/dev-db.sh reset   stop and wipe it
#   scripts/dev-db.sh status  say what runs
#
# With a Docker engine this drives docker-compose.yml; without one it starts the
# same topology from the local PostgreSQL and PgBouncer binaries, with its data
# under .dev/db/ (git-ignored). Ports, user, password and database name come from
# the environment (or implementations/bigbrotr/.env) with the defaults below,
# which are also the defaults of implementations/bigbrotr/config/core/pool.yaml.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Variables already set win over the implementation's .env.
if [ -f implementations/bigbrotr/.env ]; then
  while IFS='=' read -r key value; do
    case "$key" in ''|\#*) continue ;; esac
    key=$(echo "$key" | tr -d '[:space:]')
    value=${value%\"}; value=${value#\"}
    if [ -z "${!key+x}" ]; then export "$key=$value"; fi
  done < implementations/bigbrotr/.env
fi

DB_NAME=${DB_NAME:-bigbrotr}
DB_USER=${DB_USER:-bigbrotr}
DB_PASSWORD=${DB_PASSWORD:-bigbrotr}
PG_PORT=${DEV_PG_PORT:-55432}
BOUNCER_PORT=${DEV_PGBOUNCER_PORT:-56432}

state="$repo/.dev/db"
pgdata="$state/pgdata"
run="$state/run"
bouncer="$state/pgbouncer"
log="$state/log"

say() { echo "dev-db: $*" >&2; }
die() { say "$*"; exit 1; }

docker_engine() { command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1; }

# The server refuses to run as root: run it, and PgBouncer, as the postgres user then.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  as_db() { runuser -u postgres -- "$@"; }
  db_owner=postgres
else
  as_db() { "$@"; }
  db_owner=$(id -un)
fi

pg_bin() {
  local name=$1 dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return; fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return; fi
  done
  command -v "$name" 2>/dev/null || die "$name not found: install PostgreSQL (Debian: apt-get install postgresql)"
}

bouncer_bin() { command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; } || die "pgbouncer not found: install it (Debian: apt-get install pgbouncer)"; }

psql_bouncer() {
  PGPASSWORD="$DB_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -h 127.0.0.1 -p "$BOUNCER_PORT" -U "$DB_USER" -d "$DB_NAME" "$@"
}

wait_for_bouncer() {
  for _ in $(seq 1 60); do
    if psql_bouncer -tAc 'select 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "PgBouncer on 127.0.0.1:$BOUNCER_PORT did not answer; see $log/"
}

pg_running() { [ -f "$pgdata/postmaster.pid" ] && as_db "$(pg_bin pg_ctl)" -D "$pgdata" status >/dev/null 2>&1; }
bouncer_running() { [ -f "$run/pgbouncer.pid" ] && kill -0 "$(cat "$run/pgbouncer.pid")" 2>/dev/null; }

ensure_dirs() {
  mkdir -p "$state" "$run" "$bouncer" "$log"
  chown -R "$db_owner" "$state"
  chmod 700 "$state"
  # The postgres user must be able to reach the state folder through the repository path.
  if [ "$(id -u)" = 0 ]; then
    local dir=$state
    while [ "$dir" != / ]; do chmod o+x "$dir" 2>/dev/null || true; dir=$(dirname "$dir"); done
  fi
}

init_cluster() {
  [ -f "$pgdata/PG_VERSION" ] && return 0
  say "creating a PostgreSQL cluster in .dev/db/pgdata"
  local pwfile="$state/.pw"
  (umask 077; printf '%s\n' "$DB_PASSWORD" > "$pwfile"); chown "$db_owner" "$pwfile"
  as_db "$(pg_bin initdb)" -D "$pgdata" -U "$DB_USER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$log/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; die "initdb failed; see $log/initdb.log"; }
  rm -f "$pwfile"
  cat >> "$pgdata/postgresql.conf" <<CONF

# BigBrotr development settings
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$run'
max_connections = 300
shared_buffers = 256MB
password_encryption = 'scram-sha-256'
fsync = on
log_min_messages = warning
CONF
}

write_bouncer_config() {
  local hash
  hash=$(printf '%s' "$DB_PASSWORD" | sed 's/"/""/g')
  cat > "$bouncer/userlist.txt" <<USERS
"$DB_USER" "$hash"
USERS
  cat > "$bouncer/pgbouncer.ini" <<INI
;; BigBrotr development PgBouncer: transaction pooling, password auth.
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $bouncer/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
max_db_connections = 40
server_idle_timeout = 30
autodb_idle_timeout = 60
ignore_startup_parameters = extra_float_digits,options
logfile = $log/pgbouncer.log
pidfile = $run/pgbouncer.pid
admin_users = $DB_USER
INI
  chmod 600 "$bouncer/userlist.txt"
  chown -R "$db_owner" "$bouncer"
}

local_up() {
  ensure_dirs
  init_cluster
  if ! pg_running; then
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_db "$(pg_bin pg_ctl)" -D "$pgdata" -l "$log/postgresql.log" -w -t 60 start >/dev/null \
      || die "PostgreSQL did not start; see $log/postgresql.log"
  fi
  if ! PGPASSWORD="$DB_PASSWORD" psql -X -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d postgres -tAc \
       "select 1 from pg_database where datname = '$DB_NAME'" | grep -q 1; then
    PGPASSWORD="$DB_PASSWORD" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d postgres \
      -c "create database \"$DB_NAME\"" || die "could not create database $DB_NAME"
  fi
  write_bouncer_config
  if ! bouncer_running; then
    say "starting PgBouncer (transaction pooling) on 127.0.0.1:$BOUNCER_PORT"
    local bin
    bin="$(bouncer_bin)" || exit 1
    start_bouncer_watchdog "$bin"
  fi
  wait_for_bouncer
  say "ready: PgBouncer 127.0.0.1:$BOUNCER_PORT -> PostgreSQL 127.0.0.1:$PG_PORT, database $DB_NAME, user $DB_USER"
}

# PgBouncer runs in the foreground under a watchdog that starts it again when
# it exits on its own: PgBouncer 1.18 (Debian 12's) exits on a fatal error
# when a client closes a cancel request before it was forwarded, which a
# process killed at the wrong moment does. The watchdog runs in a session of
# its own, so it outlives the job that started it; `down` stops both.
start_bouncer_watchdog() {
  local bin=$1
  rm -f "$run/pgbouncer.stop"
  cat > "$run/pgbouncer-watchdog.sh" <<WATCHDOG
#!/usr/bin/env bash
while [ ! -f "$run/pgbouncer.stop" ]; do
  $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres --" ) "$bin" "$bouncer/pgbouncer.ini" >/dev/null 2>&1
  code=\$?
  [ -f "$run/pgbouncer.stop" ] && break
  echo "\$(date -u '+%Y-%m-%d %H:%M:%S UTC') dev-db watchdog: PgBouncer exited (status \$code); starting it again" >> "$log/pgbouncer.log"
  sleep 0.5
done
WATCHDOG
  chmod +x "$run/pgbouncer-watchdog.sh"
  setsid nohup "$run/pgbouncer-watchdog.sh" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 50); do bouncer_running && return 0; sleep 0.1; done
  die "PgBouncer did not start; see $log/pgbouncer.log"
}

local_down() {
  touch "$run/pgbouncer.stop" 2>/dev/null || true
  if bouncer_running; then
    say "stopping PgBouncer"
    kill "$(cat "$run/pgbouncer.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do bouncer_running || break; sleep 0.1; done
  fi
  if pg_running; then
    say "stopping PostgreSQL"
    as_db "$(pg_bin pg_ctl)" -D "$pgdata" -m fast -w stop >/dev/null || true
  fi
}

compose() { docker compose --env-file "${ENV_FILE:-implementations/bigbrotr/.env.example}" "$@"; }

cmd=${1:-up}
case "$cmd" in
  up)
    if docker_engine; then
      say "starting docker-compose.yml"
      [ -f implementations/bigbrotr/.env ] && ENV_FILE=implementations/bigbrotr/.env
      compose up -d --wait
      wait_for_bouncer
    else
      local_up
    fi ;;
  down)
    if docker_engine && [ ! -d "$pgdata" ]; then compose down; else local_down; fi ;;
  reset)
    if docker_engine && [ ! -d "$pgdata" ]; then compose down -v; else local_down; rm -rf "$state"; say "wiped .dev/db"; fi ;;
  status)
    if pg_running; then echo "PostgreSQL: running on 127.0.0.1:$PG_PORT"; else echo "PostgreSQL: stopped"; fi
    if bouncer_running; then echo "PgBouncer: running on 127.0.0.1:$BOUNCER_PORT"; else echo "PgBouncer: stopped"; fi ;;
  *) die "usage: $0 up|down|reset|status" ;;
esac
