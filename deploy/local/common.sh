# Shared settings for the local stack scripts: sourced, never run.
# Everything the stack writes lives under SCS_STATE_DIR (default: <repo>/.state).
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${SCS_STATE_DIR:-$REPO_DIR/.state}"
# Downloads (Kafka jars, Maven cache) are shared by every state dir, the tests' included.
CACHE_DIR="${SCS_CACHE_DIR:-$REPO_DIR/.cache}"
VENV_DIR="${SCS_VENV_DIR:-$REPO_DIR/.venv}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${SCS_LOCAL_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SCS_LOCAL_KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${SCS_LOCAL_PG_PORT:-5432}"
PG_USER=scs
PG_DB=scs
mkdir -p "$STATE_DIR/logs" "$STATE_DIR/run"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# wait_for_port HOST PORT SECONDS: true once something accepts TCP connections there.
wait_for_port() {
  local host=$1 port=$2 deadline=$((SECONDS + $3))
  while (( SECONDS < deadline )); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  return 1
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid FILE NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
  local file=$1 name=$2 pid
  if ! pid_alive "$file"; then rm -f "$file"; return 0; fi
  pid=$(cat "$file")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}
