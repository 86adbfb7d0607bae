#!/usr/bin/env bash
# The local stack without Docker: venv, Kafka (KRaft), PostgreSQL and the four services.
# Usage: stack.sh bootstrap|infra-up|up|down|status|logs|run|test [pytest args...]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SERVICES=(ingest classifier router kpi)
declare -A PORTS=([ingest]=8001 [classifier]=8002 [router]=8003 [kpi]=8004)
RECEIVER_PORT=8010
SCS="$VENV_DIR/bin/scs"

bootstrap() {
  local stamp="$VENV_DIR/.installed" wanted
  wanted=$(cat "$REPO_DIR/pyproject.toml" | sha256sum | cut -d' ' -f1)
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    log "creating virtualenv in $VENV_DIR"
    python3 -m venv "$VENV_DIR"
  fi
  if [[ ! -f $stamp || $(cat "$stamp") != "$wanted" ]]; then
    log "installing the project and its dependencies"
    if ! { "$VENV_DIR/bin/pip" install --upgrade pip \
           && "$VENV_DIR/bin/pip" install -e "$REPO_DIR[dev,ml,transformer]"; } >"$STATE_DIR/logs/pip.log" 2>&1; then
      tail -n 40 "$STATE_DIR/logs/pip.log" >&2; log "pip install failed"; exit 1
    fi
    echo "$wanted" > "$stamp"
  fi
  "$REPO_DIR/deploy/local/kafka.sh" install
  "$REPO_DIR/deploy/local/postgres.sh" install
  "$REPO_DIR/deploy/local/prometheus.sh" install
}

export_env() {
  local key_file="$STATE_DIR/admin-api-key"
  [[ -f $key_file ]] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$key_file"
  export SCS_ADMIN_API_KEY; SCS_ADMIN_API_KEY=$(cat "$key_file")
  export SCS_KAFKA_BOOTSTRAP_SERVERS="$KAFKA_HOST:$KAFKA_PORT"
  export SCS_DATABASE_URL="postgresql+asyncpg://$PG_USER:$PG_USER@127.0.0.1:$PG_PORT/$PG_DB"
  # The demo receiver listens on plain http on loopback.
  export SCS_ROUTER_WEBHOOK_ALLOW_INSECURE_URLS=true
}

infra_up() {
  bootstrap
  "$REPO_DIR/deploy/local/kafka.sh" start
  "$REPO_DIR/deploy/local/postgres.sh" start
  export_env
  "$SCS" db upgrade >/dev/null
  "$SCS" topics create
}

start_service() {
  local name=$1 pidfile="$STATE_DIR/run/$1.pid"
  if pid_alive "$pidfile"; then return 0; fi
  local upper=${name^^}
  env "SCS_${upper}_PORT=${PORTS[$name]}" nohup "$SCS" serve "$name" \
    >>"$STATE_DIR/logs/$name.log" 2>&1 &
  echo $! > "$pidfile"
}

wait_ready() {
  local name deadline=$((SECONDS + 120))
  for name in "${SERVICES[@]}"; do
    until curl -sf "http://127.0.0.1:${PORTS[$name]}/readyz" >/dev/null; do
      if (( SECONDS > deadline )); then
        log "$name is not ready; see $STATE_DIR/logs/$name.log"; tail -n 20 "$STATE_DIR/logs/$name.log" >&2
        return 1
      fi
      sleep 0.5
    done
  done
  log "services ready: ingest :8001, classifier :8002, router :8003, kpi :8004"
}

up() {
  infra_up
  for name in "${SERVICES[@]}"; do start_service "$name"; done
  wait_ready
  "$REPO_DIR/deploy/local/prometheus.sh" start
}

down() {
  local name
  stop_pid "$STATE_DIR/run/receiver.pid" receiver
  for name in "${SERVICES[@]}"; do stop_pid "$STATE_DIR/run/$name.pid" "$name"; done
  "$REPO_DIR/deploy/local/prometheus.sh" stop
  "$REPO_DIR/deploy/local/kafka.sh" stop
  "$REPO_DIR/deploy/local/postgres.sh" stop
}

status() {
  local name
  "$REPO_DIR/deploy/local/kafka.sh" status
  "$REPO_DIR/deploy/local/postgres.sh" status
  "$REPO_DIR/deploy/local/prometheus.sh" status
  for name in "${SERVICES[@]}"; do
    if pid_alive "$STATE_DIR/run/$name.pid"; then
      printf '%s: running (pid %s) ' "$name" "$(cat "$STATE_DIR/run/$name.pid")"
      curl -s "http://127.0.0.1:${PORTS[$name]}/readyz" || true; echo
    else
      echo "$name: stopped"
    fi
  done
}

logs() { tail -n 50 -F "$STATE_DIR"/logs/*.log; }

register_demo_endpoint() {
  local secret_file="$STATE_DIR/run/webhook-secret"
  curl -sf -X POST "http://127.0.0.1:8003/v1/webhook-endpoints" \
    -H "Authorization: Bearer $SCS_ADMIN_API_KEY" -H 'content-type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$RECEIVER_PORT/webhooks\", \"events\": [\"case.created\", \"case.updated\", \"case.responded\"]}" \
    | "$VENV_DIR/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["secret"])' > "$secret_file"
  echo "$secret_file"
}

run() {
  trap 'echo; log "stopping"; down; exit 0' INT TERM
  up
  local secret_file; secret_file=$(register_demo_endpoint)
  if ! pid_alive "$STATE_DIR/run/receiver.pid"; then
    "$SCS" demo receiver --secret-file "$secret_file" --port "$RECEIVER_PORT" &
    echo $! > "$STATE_DIR/run/receiver.pid"
  fi
  wait_for_port 127.0.0.1 "$RECEIVER_PORT" 30
  log "replaying the bundled sample (deploy/sample/mentions.ndjson); webhooks below:"
  "$SCS" ingest replay "$REPO_DIR/deploy/sample/mentions.ndjson" --rebase-time --rate 40
  log "live summary every 5 s; Ctrl-C stops everything"
  while true; do "$SCS" demo summary; sleep 5; done
}

run_tests() {
  # The tests get their own state dir and ports, so a running `make up` stack is untouched.
  export SCS_STATE_DIR="$REPO_DIR/.state/test"
  export SCS_LOCAL_KAFKA_PORT=19092 SCS_LOCAL_KAFKA_CONTROLLER_PORT=19093 SCS_LOCAL_PG_PORT=15432
  export SCS_LOCAL_PROMETHEUS_PORT=19090
  # The integration tests run the services on these ports (tests/integration/conftest.py).
  export SCS_LOCAL_PROMETHEUS_TARGETS=127.0.0.1:18001,127.0.0.1:18002,127.0.0.1:18003,127.0.0.1:18004
  exec "$REPO_DIR/deploy/local/test.sh" "$@"
}

case "${1:-}" in
  bootstrap) bootstrap ;;
  infra-up) infra_up ;;
  up) up ;;
  down) down ;;
  status) status ;;
  logs) logs ;;
  run) run ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 bootstrap|infra-up|up|down|status|logs|run|test" >&2; exit 2 ;;
esac
