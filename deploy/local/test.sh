#!/usr/bin/env bash
# Runs the whole suite: brings up Kafka, PostgreSQL and Prometheus for the tests (own state dir
# and ports, set by stack.sh test), runs pytest, and stops what it started.
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$REPO_DIR/deploy/local/stack.sh" bootstrap
cleanup() {
  "$REPO_DIR/deploy/local/prometheus.sh" stop
  "$REPO_DIR/deploy/local/kafka.sh" stop
  "$REPO_DIR/deploy/local/postgres.sh" stop
}
trap cleanup EXIT
# Every run starts from an empty broker: no offsets or messages left from an earlier run.
"$REPO_DIR/deploy/local/kafka.sh" stop
rm -rf "$STATE_DIR/kafka/data"
"$REPO_DIR/deploy/local/kafka.sh" start
"$REPO_DIR/deploy/local/postgres.sh" start
"$REPO_DIR/deploy/local/prometheus.sh" stop
rm -rf "$STATE_DIR/prometheus/data"
"$REPO_DIR/deploy/local/prometheus.sh" start
export SCS_TEST_KAFKA_BOOTSTRAP_SERVERS="$KAFKA_HOST:$KAFKA_PORT"
export SCS_TEST_PROMETHEUS_URL="http://127.0.0.1:${SCS_LOCAL_PROMETHEUS_PORT:-9090}"
export SCS_TEST_DATABASE_URL="postgresql+asyncpg://$PG_USER:$PG_USER@127.0.0.1:$PG_PORT/${PG_DB}_test"
cd "$REPO_DIR"
# Static checks first: a lint or type error fails the suite like a failing test.
if [[ $# -eq 0 ]]; then
  log "ruff, import contracts and mypy"
  "$VENV_DIR/bin/ruff" check --quiet .
  "$VENV_DIR/bin/ruff" format --check --quiet .
  "$VENV_DIR/bin/lint-imports" --no-logo --no-cache
  "$VENV_DIR/bin/mypy" shared services scs_router bench tests
fi
"$VENV_DIR/bin/python" -m pytest "$@"
