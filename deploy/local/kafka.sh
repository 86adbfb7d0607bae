#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, from Maven Central jars.
# Usage: kafka.sh install|start|stop|status
# shellcheck source=deploy/local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
KAFKA_DIR="$STATE_DIR/kafka"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_DIR/deploy/local/kafka/pom.xml")
LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
PIDFILE="$STATE_DIR/run/kafka.pid"
CONFIG="$KAFKA_DIR/server.properties"
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
MIN_JAVA=17
# The broker's command line names this class: tells our broker from a process that reused its pid.
MARKER=kafka.Kafka

# java_major: the major version of the java that will run the broker (0 when there is none).
java_major() {
  local version
  version=$("$JAVA_BIN" -version 2>&1 | sed -n 's/.* version "\([0-9][0-9]*\).*/\1/p' | head -n 1) || true
  echo "${version:-0}"
}

# jdk_package: the newest OpenJDK runtime this machine's apt offers that can run Kafka 4.
jdk_package() {
  local package
  for package in openjdk-25-jre-headless openjdk-21-jre-headless openjdk-17-jre-headless; do
    if apt-cache policy "$package" 2>/dev/null | grep -qE '^ *Candidate: [^(]'; then
      echo "$package"; return 0
    fi
  done
  echo openjdk-17-jre-headless
}

# A JDK (Kafka 4 needs Java 17+) and Maven (to fetch the broker's jars), from Debian packages when
# missing; without root, stop at once with the exact command to run.
install_java_and_maven() {
  local need_java=false need_maven=false packages=()
  (( $(java_major) >= MIN_JAVA )) || need_java=true
  command -v mvn >/dev/null || need_maven=true
  if ! $need_java && ! $need_maven; then return 0; fi
  # On a fresh machine apt-cache knows no candidates before an update.
  if [[ $(id -u) -eq 0 ]]; then apt-get update -qq; fi
  if $need_java; then packages+=("$(jdk_package)"); fi
  if $need_maven; then packages+=(maven); fi
  if [[ $(id -u) -ne 0 ]]; then
    log "Kafka needs Java $MIN_JAVA+ and Maven; install them with:"
    log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}"
    exit 1
  fi
  log "installing ${packages[*]} from Debian packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  if (( $(java_major) < MIN_JAVA )); then
    log "$JAVA_BIN is still no Java $MIN_JAVA+ after installing ${packages[*]}; point JAVA_HOME" \
      "at one (ls /usr/lib/jvm)"
    exit 1
  fi
}

install() {
  if [[ -f $LIBS/.complete ]] && (( $(java_major) >= MIN_JAVA )); then return 0; fi
  install_java_and_maven
  if [[ -f $LIBS/.complete ]]; then return 0; fi
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
  if pid_alive "$PIDFILE" "$MARKER"; then log "kafka already running (pid $(cat "$PIDFILE"))"; return 0; fi
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
  # shellcheck disable=SC2094  # KAFKA_LOG_FILE names the log for log4j; nothing reads it here
  KAFKA_LOG_FILE="$STATE_DIR/logs/kafka.log" nohup "$JAVA_BIN" -Xms256m -Xmx768m -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$REPO_DIR/deploy/local/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$STATE_DIR/logs" \
    -cp "$cp" kafka.Kafka "$CONFIG" >>"$STATE_DIR/logs/kafka.log" 2>&1 &
  echo $! > "$PIDFILE"
  if ! wait_for_port "$KAFKA_HOST" "$KAFKA_PORT" 90; then
    log "kafka did not open $KAFKA_PORT; last log lines:"; tail -n 40 "$STATE_DIR/logs/kafka.log" >&2; exit 1
  fi
}

stop() { stop_pid "$PIDFILE" kafka "$MARKER"; }
status() { if pid_alive "$PIDFILE" "$MARKER"; then echo "kafka: running (pid $(cat "$PIDFILE"), $KAFKA_HOST:$KAFKA_PORT)"; else echo "kafka: stopped"; fi; }

case "${1:-}" in
  install|start|stop|status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
