#!/usr/bin/env bash
# A Kafka 3.9 cluster on 127.0.0.1: N combined KRaft broker+controller nodes (default 3), each
# one deploy/local/kafka.sh node with its own ports and data directory, the jars shared with
# the one-node stack. Production-like durability: replication factor 3 (or N), min ISR 2.
#   kafka_cluster.sh install          resolve the broker jars (same Maven resolution as kafka.sh)
#   kafka_cluster.sh start            format each node once (one cluster id), start all, wait
#   kafka_cluster.sh stop             stop every node by its PID file
#   kafka_cluster.sh status           "up <bootstrap>" when every node listens, else "down" (exit 3)
#   kafka_cluster.sh start-node I     start node I (1..N) again, e.g. after a kill -9
#   kafka_cluster.sh stop-node I      stop node I cleanly
#   kafka_cluster.sh bootstrap        print the bootstrap servers (host:port,...)
# Env: CANDOR_HOME, CANDOR_KAFKA_NODES (3), CANDOR_KAFKA_CLUSTER_PORT (19092: node I serves
#      clients on PORT+I-1), CANDOR_KAFKA_CLUSTER_CONTROLLER_PORT (PORT+N: node I's controller
#      on it +I-1), CANDOR_KAFKA_HEAP (512m each), CANDOR_KAFKA_LIBS (the jars:
#      $CANDOR_HOME/kafka/libs).
# State: $CANDOR_HOME/kafka-cluster/node-I/ (data, logs, PID file).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HERE="$CANDOR_REPO/deploy/local"
NODES="${CANDOR_KAFKA_NODES:-3}"
BASE="${CANDOR_KAFKA_CLUSTER_PORT:-19092}"
CBASE="${CANDOR_KAFKA_CLUSTER_CONTROLLER_PORT:-$((BASE + NODES))}"
ROOT="$CANDOR_HOME/kafka-cluster"
LIBS="${CANDOR_KAFKA_LIBS:-$CANDOR_HOME/kafka/libs}"
REPLICATION=$((NODES < 3 ? NODES : 3))
MIN_ISR=$((REPLICATION > 1 ? 2 : 1))

# Fence a dead broker within seconds rather than the default 9 s (tests kill nodes).
TUNING="broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000"

voters() {
  local i out=()
  for ((i = 1; i <= NODES; i++)); do out+=("$i@127.0.0.1:$((CBASE + i - 1))"); done
  local IFS=,; echo "${out[*]}"
}

bootstrap() {
  local i out=()
  for ((i = 1; i <= NODES; i++)); do out+=("127.0.0.1:$((BASE + i - 1))"); done
  local IFS=,; echo "${out[*]}"
}

cluster_id() { # one id for every node's storage, kept beside them
  mkdir -p "$ROOT"
  if [[ ! -s "$ROOT/cluster.id" ]]; then
    java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null \
      | tail -n 1 >"$ROOT/cluster.id"
  fi
  cat "$ROOT/cluster.id"
}

node() { # node I ACTION: run kafka.sh for node I
  local i=$1
  [[ "$i" =~ ^[0-9]+$ ]] && ((i >= 1 && i <= NODES)) || die "node must be 1..$NODES, not '$i'"
  CANDOR_KAFKA_DIR="$ROOT/node-$i" CANDOR_KAFKA_LIBS="$LIBS" \
  CANDOR_KAFKA_NODE_ID="$i" CANDOR_KAFKA_QUORUM_VOTERS="$(voters)" \
  CANDOR_KAFKA_CLUSTER_ID="$(cluster_id)" \
  CANDOR_KAFKA_PORT="$((BASE + i - 1))" CANDOR_KAFKA_CONTROLLER_PORT="$((CBASE + i - 1))" \
  CANDOR_KAFKA_REPLICATION="$REPLICATION" CANDOR_KAFKA_MIN_ISR="$MIN_ISR" \
  CANDOR_KAFKA_EXTRA_PROPS="$TUNING" \
    "$HERE/kafka.sh" "$2"
}

start() {
  CANDOR_KAFKA_LIBS="$LIBS" "$HERE/kafka.sh" install
  local i
  # Every voter must run before the quorum elects a controller and any broker serves.
  for ((i = 1; i <= NODES; i++)); do node "$i" launch; done
  for ((i = 1; i <= NODES; i++)); do
    node "$i" await || { stop; die "kafka cluster failed to start at node $i (logs: $ROOT/node-$i)"; }
  done
  log "kafka cluster up: $(bootstrap) (replication $REPLICATION, min ISR $MIN_ISR)"
}

stop() { # all at once: a node stopped last waits for a quorum that is gone
  local i
  for ((i = 1; i <= NODES; i++)); do node "$i" stop & done
  wait
}

status() {
  local i
  for ((i = 1; i <= NODES; i++)); do
    node "$i" status >/dev/null || { echo "down"; return 3; }
  done
  echo "up $(bootstrap)"
}

case "${1:-}" in
  install) CANDOR_KAFKA_LIBS="$LIBS" "$HERE/kafka.sh" install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  start-node) node "${2:-}" start ;;
  stop-node) node "${2:-}" stop ;;
  bootstrap) bootstrap ;;
  *) echo "usage: $0 install|start|stop|status|start-node I|stop-node I|bootstrap" >&2; exit 2 ;;
esac
