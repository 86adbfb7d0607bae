#!/usr/bin/env bash
# PostgreSQL from Debian packages, one cluster in the project's state dir on 127.0.0.1.
# Usage: postgres.sh install|start|stop|status
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PG_DATA="$STATE_DIR/postgres/data"
PG_SOCKET_DIR="$STATE_DIR/postgres/socket"
PG_LOG="$STATE_DIR/logs/postgres.log"

pg_bindir() {
  local dir
  # shellcheck disable=SC2012  # Debian's own paths, no odd names; sort -V picks the newest
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n $dir ]] && echo "$dir"
}

install() {
  if [[ -n $(pg_bindir) ]]; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then log "PostgreSQL is not installed: sudo apt-get install -y postgresql"; exit 1; fi
  log "installing PostgreSQL from Debian packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# initdb and postgres refuse to run as root: there the cluster belongs to the postgres user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# postmaster_running: true when postmaster.pid names a live postgres. pg_ctl's own check is
# kill -0, which calls a zombie left by kill -9 alive, and so would refuse to start.
postmaster_running() {
  local pidfile=$PG_DATA/postmaster.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(head -n 1 "$pidfile")
  process_alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PG_DATA"
}

# start_server BINDIR: after kill -9 the dead server's postmaster.pid and socket lock file stay,
# and PostgreSQL believes it still runs while their pid is a zombie or reused: both go (the
# socket dir is this cluster's own). The server then refuses only while a backend of the dead
# one still holds its shared memory, which lasts seconds.
start_server() {
  local bin=$1 attempt lock
  for lock in "$PG_DATA/postmaster.pid" "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT.lock"; do
    if [[ -f $lock ]]; then
      log "postgres is not running: removing the stale $lock"
      rm -f "$lock"
    fi
  done
  for attempt in 1 2 3 4 5; do
    log "starting postgres on 127.0.0.1:$PG_PORT"
    if as_owner "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKET_DIR -c max_connections=200 -c fsync=on" >/dev/null; then
      return 0
    fi
    if (( attempt < 5 )); then sleep 2; fi
  done
  log "postgres did not start; last log lines:"; tail -n 20 "$PG_LOG" >&2; exit 1
}

start() {
  install
  local bin; bin=$(pg_bindir)
  mkdir -p "$PG_DATA" "$PG_SOCKET_DIR"
  touch "$PG_LOG"
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres:postgres "$STATE_DIR/postgres" "$PG_LOG"; fi
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    log "initialising cluster in $PG_DATA"
    as_owner "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if postmaster_running; then
    log "postgres already running"
  else
    start_server "$bin"
  fi
  # Role and database for the services (idempotent).
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'") ]]; then
    "${psql[@]}" -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_USER'"
  fi
  for db in "$PG_DB" "${PG_DB}_test"; do
    if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$db'") ]]; then
      "${psql[@]}" -c "CREATE DATABASE $db OWNER $PG_USER"
    fi
  done
}

stop() {
  local bin; bin=$(pg_bindir) || return 0
  if postmaster_running; then
    log "stopping postgres"
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
}

status() {
  if [[ -z $(pg_bindir) ]]; then echo "postgres: not installed"; return 0; fi
  if postmaster_running; then
    echo "postgres: running (127.0.0.1:$PG_PORT)"
  else
    echo "postgres: stopped"
  fi
}

case "${1:-}" in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
