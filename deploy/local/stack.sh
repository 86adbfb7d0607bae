#!/usr/bin/env bash
# The local stack without Docker: venv, Kafka (KRaft), PostgreSQL and the four services.
# Usage: stack.sh bootstrap|infra-up|up|down|status|logs|run|test [pytest args...]
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SERVICES=(ingest classifier router kpi)
declare -A PORTS=([ingest]=8001 [classifier]=8002 [router]=8003 [kpi]=8004)
RECEIVER_PORT=8010
SCS="$VENV_DIR/bin/scs"

# The tests need the development tools and both trained-model extras; the demo needs neither
# scikit-learn nor jax (the default classifier is rules and lexicons).
TEST_EXTRAS="[dev,ml,transformer]"
FIRST_RUN_MINUTES=3

# bootstrap [EXTRAS]: the venv with the project (and EXTRAS, default the tests'), Kafka's jars,
# PostgreSQL and Prometheus (and, for the tests, Chromium). A venv that has the tests' extras
# serves the demo as well.
bootstrap() {
  local extras=${1-$TEST_EXTRAS} wanted stamp="$VENV_DIR/.installed"
  [[ $extras == "$TEST_EXTRAS" ]] || stamp="$VENV_DIR/.installed-base"
  wanted=$(sha256sum < "$REPO_DIR/pyproject.toml" | cut -d' ' -f1)
  if [[ ! -f $VENV_DIR/.installed && ! -f $VENV_DIR/.installed-base ]]; then
    log "first run: installing the Python packages, the Kafka jars from Maven Central and, when" \
      "missing, a JDK, Maven, PostgreSQL and Prometheus from Debian packages takes about" \
      "$FIRST_RUN_MINUTES minutes on 2 cores (the tests' extras, jax and scikit-learn, add a few);" \
      "later runs start in about 30 s"
  fi
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    log "creating virtualenv in $VENV_DIR"
    python3 -m venv "$VENV_DIR"
  fi
  if [[ $(cat "$stamp" 2>/dev/null) != "$wanted" && $(cat "$VENV_DIR/.installed" 2>/dev/null) != "$wanted" ]]; then
    log "installing the project${extras:+ with $extras} and its dependencies (log: $STATE_DIR/logs/pip.log)"
    if ! { "$VENV_DIR/bin/pip" install --upgrade pip \
           && "$VENV_DIR/bin/pip" install -e "$REPO_DIR$extras"; } >"$STATE_DIR/logs/pip.log" 2>&1; then
      tail -n 40 "$STATE_DIR/logs/pip.log" >&2; log "pip install failed"; exit 1
    fi
    echo "$wanted" > "$stamp"
  fi
  "$REPO_DIR/deploy/local/kafka.sh" install
  "$REPO_DIR/deploy/local/postgres.sh" install
  "$REPO_DIR/deploy/local/prometheus.sh" install
  [[ $extras != "$TEST_EXTRAS" ]] || install_browser
}

# The console's browser test drives Debian's Chromium through Debian's chromedriver (nothing is
# downloaded from a browser CDN).
install_browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    log "Chromium is not installed: sudo apt-get install -y chromium chromium-driver"; exit 1
  fi
  log "installing Chromium and chromedriver from Debian packages (the console's browser test)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
}

export_env() {
  export_local_secrets
  export SCS_KAFKA_BOOTSTRAP_SERVERS="$KAFKA_HOST:$KAFKA_PORT"
  export SCS_DATABASE_URL="postgresql+asyncpg://$PG_USER:$PG_USER@127.0.0.1:$PG_PORT/$PG_DB"
  # The demo receiver listens on plain http on loopback: the only network webhooks may reach
  # here, unless the operator says otherwise.
  export SCS_ROUTER_WEBHOOK_ALLOW_INSECURE_URLS=true
  export SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS="${SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS:-[\"127.0.0.0/8\"]}"
}

infra_up() {
  bootstrap ""
  "$REPO_DIR/deploy/local/kafka.sh" start
  "$REPO_DIR/deploy/local/postgres.sh" start
  export_env
  "$SCS" db upgrade >/dev/null
  "$SCS" topics create
}

start_service() {
  local name=$1 pidfile="$STATE_DIR/run/$1.pid"
  if pid_alive "$pidfile" "serve $name"; then return 0; fi
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
  log "agent console: http://127.0.0.1:${PORTS[router]}/console (sign in with the admin key," \
    "\$SCS_ADMIN_API_KEY; \`make status\` says where it came from)"
}

up() {
  infra_up
  for name in "${SERVICES[@]}"; do start_service "$name"; done
  wait_ready
  "$REPO_DIR/deploy/local/prometheus.sh" start
}

down() {
  local name
  stop_pid "$STATE_DIR/run/receiver.pid" receiver "demo receiver"
  for name in "${SERVICES[@]}"; do stop_pid "$STATE_DIR/run/$name.pid" "$name" "serve $name"; done
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
    if pid_alive "$STATE_DIR/run/$name.pid" "serve $name"; then
      printf '%s: running (pid %s) ' "$name" "$(cat "$STATE_DIR/run/$name.pid")"
      curl -s "http://127.0.0.1:${PORTS[$name]}/readyz" || true; echo
    else
      echo "$name: stopped"
    fi
  done
  if [[ -f $KEY_SOURCES ]]; then
    echo "keys and tokens (where \`make up\` took them from; values never printed):"
    sed 's/^/  /' "$KEY_SOURCES"
  else
    echo "keys and tokens: none yet; \`make up\` takes them from the environment or generates" \
      "them into $STATE_DIR"
  fi
}

logs() { tail -n 50 -F "$STATE_DIR"/logs/*.log; }

register_demo_endpoint() {
  local secret_file="$STATE_DIR/run/webhook-secret"
  curl -sf -X POST "http://127.0.0.1:8003/v1/webhook-endpoints" \
    -H "Authorization: Bearer $SCS_ADMIN_API_KEY" -H 'content-type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$RECEIVER_PORT/webhooks\", \"events\": [\"case.created\", \"case.updated\", \"case.responded\", \"case.escalated\", \"case.resolved\", \"case.reopened\", \"case.handoff\", \"sla.warning\", \"sla.breached\", \"crisis.opened\", \"crisis.closed\"]}" \
    | (umask 077 && "$VENV_DIR/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["secret"])' > "$secret_file")
  echo "$secret_file"
}

run() {
  trap 'echo; log "stopping"; down; exit 0' INT TERM
  up
  local secret_file; secret_file=$(register_demo_endpoint)
  if ! pid_alive "$STATE_DIR/run/receiver.pid" "demo receiver"; then
    "$SCS" demo receiver --secret-file "$secret_file" --port "$RECEIVER_PORT" &
    echo $! > "$STATE_DIR/run/receiver.pid"
  fi
  wait_for_port 127.0.0.1 "$RECEIVER_PORT" 30
  log "replaying the bundled sample (deploy/sample/mentions.ndjson); webhooks below:"
  # scs ingest replay sends SCS_INGEST_API_TOKEN (exported by export_env) as its bearer token.
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

# Run as a command; sourced (by tests), it only defines the functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
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
fi
