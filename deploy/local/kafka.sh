#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, from Maven Central jars.
# Usage: kafka.sh install|start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_DIR/deploy/local/kafka/pom.xml")
LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
PIDFILE="$STATE_DIR/run/kafka.pid"
CONFIG="$KAFKA_DIR/server.properties"
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"

install() {
  if [[ -f $LIBS/.complete ]]; then return 0; fi
  command -v mvn >/dev/null || { log "maven is required to fetch the Kafka jars"; exit 1; }
  log "resolving Kafka jars from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mvn -q -B -Dmaven.repo.local="$CACHE_DIR/m2" -f "$REPO_DIR/deploy/local/kafka/pom.xml" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete"
}

write_config() {
  mkdir -p "$KAFKA_DIR/data"
  cat > "$CONFIG" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data
# Topics are created by the project (scs topics create) with explicit partitions.
auto.create.topics.enable=false
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One local consumer group per service: no need to wait for more members before assigning.
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
}

start() {
  install
  if pid_alive "$PIDFILE"; then log "kafka already running (pid $(cat "$PIDFILE"))"; return 0; fi
  write_config
  local cp="$LIBS/*"
  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$("$JAVA_BIN" -cp "$cp" kafka.tools.StorageTool random-uuid)
    log "formatting KRaft storage (cluster $cluster_id)"
    "$JAVA_BIN" -cp "$cp" -Dlog4j2.configurationFile="$REPO_DIR/deploy/local/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG" --ignore-formatted >>"$STATE_DIR/logs/kafka.log" 2>&1
  fi
  log "starting kafka on $KAFKA_HOST:$KAFKA_PORT"
  KAFKA_LOG_FILE="$STATE_DIR/logs/kafka.log" nohup "$JAVA_BIN" -Xms256m -Xmx768m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$REPO_DIR/deploy/local/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$STATE_DIR/logs" \
    -cp "$cp" kafka.Kafka "$CONFIG" >>"$STATE_DIR/logs/kafka.log" 2>&1 &
  echo $! > "$PIDFILE"
  if ! wait_for_port "$KAFKA_HOST" "$KAFKA_PORT" 90; then
    log "kafka did not open $KAFKA_PORT; last log lines:"; tail -n 40 "$STATE_DIR/logs/kafka.log" >&2; exit 1
  fi
}

stop() { stop_pid "$PIDFILE" kafka; }
status() { if pid_alive "$PIDFILE"; then echo "kafka: running (pid $(cat "$PIDFILE"), $KAFKA_HOST:$KAFKA_PORT)"; else echo "kafka: stopped"; fi; }

case "${1:-}" in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
