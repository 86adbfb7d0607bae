#!/usr/bin/env bash
# Prometheus from Debian packages, scraping the four local services, with the SLA alert rules.
# Usage: prometheus.sh install|start|stop|status
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PROM_PORT="${SCS_LOCAL_PROMETHEUS_PORT:-9090}"
PROM_DIR="$STATE_DIR/prometheus"
PIDFILE="$STATE_DIR/run/prometheus.pid"
# Service ports to scrape (the test suite runs the services on other ports).
TARGETS="${SCS_LOCAL_PROMETHEUS_TARGETS:-127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003,127.0.0.1:8004}"

install() {
  if command -v prometheus >/dev/null; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then log "Prometheus is not installed: sudo apt-get install -y prometheus"; exit 1; fi
  log "installing Prometheus from Debian packages"
  apt-get update -qq
  # Only the server binary is run; the package's own service is not started.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
}

start() {
  install
  if pid_alive "$PIDFILE" prometheus; then log "prometheus already running"; return 0; fi
  mkdir -p "$PROM_DIR/data"
  local targets
  # shellcheck disable=SC2086  # split host:port,host:port on purpose
  targets=$(printf '"%s", ' ${TARGETS//,/ }); targets="[${targets%, }]"
  cat > "$PROM_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $REPO_DIR/deploy/prometheus/rules.yml
scrape_configs:
  - job_name: scs
    static_configs:
      - targets: $targets
YAML
  log "starting prometheus on 127.0.0.1:$PROM_PORT"
  nohup prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --storage.tsdb.retention.time=2d \
    >>"$STATE_DIR/logs/prometheus.log" 2>&1 &
  echo $! > "$PIDFILE"
  if ! wait_for_port 127.0.0.1 "$PROM_PORT" 30; then
    log "prometheus did not start"; tail -n 20 "$STATE_DIR/logs/prometheus.log" >&2; exit 1
  fi
}

stop() { stop_pid "$PIDFILE" prometheus prometheus; }
status() { if pid_alive "$PIDFILE" prometheus; then echo "prometheus: running (127.0.0.1:$PROM_PORT)"; else echo "prometheus: stopped"; fi; }

case "${1:-}" in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
