#!/usr/bin/env bash
# PostgreSQL from Debian packages, one cluster in the project's state dir on 127.0.0.1.
# Usage: postgres.sh install|start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PG_DATA="$STATE_DIR/postgres/data"
PG_SOCKET_DIR="$STATE_DIR/postgres/socket"
PG_LOG="$STATE_DIR/logs/postgres.log"

pg_bindir() {
  local dir
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
  if as_owner "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "postgres already running"
  else
    log "starting postgres on 127.0.0.1:$PG_PORT"
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKET_DIR -c max_connections=200 -c fsync=on" >/dev/null
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
  if [[ -f $PG_DATA/postmaster.pid ]]; then
    log "stopping postgres"
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
}

status() {
  local bin; bin=$(pg_bindir) || { echo "postgres: not installed"; return 0; }
  if [[ -f $PG_DATA/PG_VERSION ]] && as_owner "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    echo "postgres: running (127.0.0.1:$PG_PORT)"
  else
    echo "postgres: stopped"
  fi
}

case "${1:-}" in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
