#!/usr/bin/env bash
# Apache Kafka 3.9, one KRaft node (broker + controller) on 127.0.0.1.
#   kafka.sh install   resolve the broker jars from Maven Central into $CANDOR_HOME/kafka/libs
#   kafka.sh start     format storage once, start, wait until the broker answers
#   kafka.sh stop      stop by PID file (TERM, then KILL after 30 s)
#   kafka.sh status    print "up <bootstrap>" or "down", exit 0/3
#   kafka.sh launch    like start, but return once the process runs (kafka_cluster.sh starts
#                      every node of a quorum before any of them can serve)
#   kafka.sh await     wait until a launched node listens
# Env: CANDOR_HOME, CANDOR_KAFKA_PORT (9092), CANDOR_KAFKA_CONTROLLER_PORT (9093),
#      CANDOR_KAFKA_HEAP (512m).
# One node of a cluster (set by deploy/local/kafka_cluster.sh; the defaults are the one-node stack):
#      CANDOR_KAFKA_DIR ($CANDOR_HOME/kafka), CANDOR_KAFKA_LIBS ($CANDOR_HOME/kafka/libs),
#      CANDOR_KAFKA_NODE_ID (1), CANDOR_KAFKA_QUORUM_VOTERS (1@127.0.0.1:<controller port>),
#      CANDOR_KAFKA_CLUSTER_ID (a random id at the first format), CANDOR_KAFKA_REPLICATION (1:
#      replication of internal and new topics), CANDOR_KAFKA_MIN_ISR (1),
#      CANDOR_KAFKA_EXTRA_PROPS (lines appended to server.properties).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${CANDOR_KAFKA_PORT:-9092}"
CPORT="${CANDOR_KAFKA_CONTROLLER_PORT:-9093}"
DIR="${CANDOR_KAFKA_DIR:-$CANDOR_HOME/kafka}"
LIBS="${CANDOR_KAFKA_LIBS:-$CANDOR_HOME/kafka/libs}"
NODE_ID="${CANDOR_KAFKA_NODE_ID:-1}"
VOTERS="${CANDOR_KAFKA_QUORUM_VOTERS:-$NODE_ID@127.0.0.1:$CPORT}"
REPLICATION="${CANDOR_KAFKA_REPLICATION:-1}"
MIN_ISR="${CANDOR_KAFKA_MIN_ISR:-1}"
PIDFILE="$DIR/kafka.pid"
LOGFILE="$DIR/kafka.log"
POM="$CANDOR_REPO/deploy/local/pom.xml"

install() {
  need java "install OpenJDK 17: apt-get install -y openjdk-17-jre-headless"
  need mvn "install Maven: apt-get install -y maven"
  mkdir -p "$DIR" "$(dirname "$LIBS")"
  local stamp="$LIBS/.pom.sha256" want
  want=$(sha256sum "$POM" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  log "resolving Kafka broker jars from Maven Central into $LIBS"
  rm -rf "$LIBS.tmp"
  mvn -q -B -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$LIBS.tmp" -DincludeScope=runtime >"$DIR/maven.log" 2>&1 \
    || { tail -n 30 "$DIR/maven.log" >&2; die "Maven could not resolve the Kafka jars (log: $DIR/maven.log)"; }
  rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
  echo "$want" >"$stamp"
}

write_config() {
  mkdir -p "$DIR/data"
  cat >"$DIR/server.properties" <<PROPS
# written by deploy/local/kafka.sh; edits are overwritten on start
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
num.partitions=12
auto.create.topics.enable=false
offsets.topic.replication.factor=$REPLICATION
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=$MIN_ISR
default.replication.factor=$REPLICATION
min.insync.replicas=$MIN_ISR
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=60000
${CANDOR_KAFKA_EXTRA_PROPS:-}
PROPS
  cat >"$DIR/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$DIR/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
}

JAVA=(java "-Xms${CANDOR_KAFKA_HEAP:-512m}" "-Xmx${CANDOR_KAFKA_HEAP:-512m}"
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$DIR/log4j.properties" -cp "$LIBS/*")

launch() {
  if pid_alive "$PIDFILE"; then log "kafka node $NODE_ID already running (pid $(cat "$PIDFILE"))"; return 0; fi
  install
  port_free "$PORT" || die "port $PORT is taken by another process; set CANDOR_KAFKA_PORT"
  port_free "$CPORT" || die "port $CPORT is taken by another process; set CANDOR_KAFKA_CONTROLLER_PORT"
  write_config
  if [[ ! -f "$DIR/data/meta.properties" ]]; then
    local id="${CANDOR_KAFKA_CLUSTER_ID:-}"
    [[ -n "$id" ]] || id=$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    log "formatting KRaft storage (cluster id $id)"
    "${JAVA[@]}" kafka.tools.StorageTool format -t "$id" -c "$DIR/server.properties" \
      >"$DIR/format.log" 2>&1 || { cat "$DIR/format.log" >&2; die "storage format failed"; }
  fi
  log "starting kafka node $NODE_ID on 127.0.0.1:$PORT"
  # setsid: the broker must not die with the shell that started it
  setsid "${JAVA[@]}" kafka.Kafka "$DIR/server.properties" >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
}

await_up() {
  if ! wait_port "$PORT" 90 "$PIDFILE" kafka "$LOGFILE"; then
    stop_pid "$PIDFILE" kafka 10; die "kafka failed to start (log: $LOGFILE, $DIR/server.log)"
  fi
  log "kafka up at 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
}

start() {
  if pid_alive "$PIDFILE"; then log "kafka already running (pid $(cat "$PIDFILE"))"; return 0; fi
  launch
  await_up
}

stop() { stop_pid "$PIDFILE" kafka 30; }

status() {
  if pid_alive "$PIDFILE" && ! port_free "$PORT"; then echo "up 127.0.0.1:$PORT pid=$(cat "$PIDFILE")"; return 0; fi
  echo "down"; return 3
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  launch) launch ;;
  await) await_up ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 install|start|launch|await|stop|restart|status" >&2; exit 2 ;;
esac
