# shellcheck shell=bash disable=SC2034  # sourced: its variables are used by the scripts that source it
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

# process_alive PID: true when PID is a running process. kill -0 alone is not enough: a process
# killed with -9 stays a zombie until its parent reaps it, and where PID 1 does not reap
# (containers, sandboxes) the dead broker's pid answers kill -0 for ever.
process_alive() {
  local state
  [[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
  # /proc/PID/stat is "PID (COMM) STATE ...": COMM may hold spaces, so cut after the last ')'.
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# pid_alive FILE [MARKER]: true when FILE names a running process, whose command line contains
# MARKER when one is given (after a crash or a reboot the pid may belong to someone else).
pid_alive() {
  local pid
  [[ -f $1 ]] || return 1
  pid=$(cat "$1")
  process_alive "$pid" || return 1
  [[ -z ${2:-} ]] || tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pid FILE NAME [MARKER]: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
  local file=$1 name=$2 pid
  if ! pid_alive "$file" "${3:-}"; then rm -f "$file"; return 0; fi
  pid=$(cat "$file")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do process_alive "$pid" || break; sleep 0.5; done
  if process_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$file"
}

# The local stack's keys and tokens. One set in the environment always wins; otherwise one is
# generated on first use and kept in a file of its own in the state dir (mode 600), so it stays
# the same across restarts (the webhook secrets key must: it decrypts the stored secrets).
LOCAL_SECRETS=(SCS_ADMIN_API_KEY SCS_INGEST_API_TOKEN SCS_CLASSIFIER_API_TOKEN
  SCS_ROUTER_WEBHOOK_SECRETS_KEY)
KEY_SOURCES="$STATE_DIR/run/key-sources"

# secret_file NAME: where the generated value of NAME is kept (SCS_ADMIN_API_KEY -> admin-api-key).
secret_file() { local name=${1#SCS_}; name=${name,,}; echo "$STATE_DIR/${name//_/-}"; }

# new_secret NAME: a fresh random value in the form NAME needs.
new_secret() {
  if [[ $1 == SCS_ROUTER_WEBHOOK_SECRETS_KEY ]]; then
    # A Fernet key: 32 random bytes, URL-safe base64 (what Fernet.generate_key() returns).
    head -c 32 /dev/urandom | base64 | tr '+/' '-_'
  else
    head -c 24 /dev/urandom | base64 | tr -d '/+=\n'; echo
  fi
}

# export_local_secrets: export every LOCAL_SECRETS variable and record, without the values,
# where each came from in $KEY_SOURCES (printed by `stack.sh status`).
export_local_secrets() {
  local name file
  : > "$KEY_SOURCES"
  for name in "${LOCAL_SECRETS[@]}"; do
    if [[ -n ${!name:-} ]]; then
      export "${name?}"
      echo "$name: from the environment" >> "$KEY_SOURCES"
      continue
    fi
    file=$(secret_file "$name")
    if [[ ! -s $file ]]; then (umask 077 && new_secret "$name" > "$file"); fi
    chmod 600 "$file"  # also one kept from before this was private
    export "$name=$(cat "$file")"
    echo "$name: generated, kept in $file" >> "$KEY_SOURCES"
  done
}
