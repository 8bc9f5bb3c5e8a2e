#!/usr/bin/env bash
# A sharded ClickHouse on 127.0.0.1: N servers (default 2), each one deploy/local/clickhouse.sh
# server with its own ports and data directory, joined in one `remote_servers` cluster
# (one replica per shard: the chdb engine cannot run ReplicatedMergeTree, see
# deploy/local/clickhouse_server.py and the README's "Beyond one machine").
#   clickhouse_cluster.sh start | stop | status | urls
#   clickhouse_cluster.sh start-shard I | stop-shard I
# Env: CANDOR_HOME, CANDOR_CLICKHOUSE_SHARD_COUNT (2), CANDOR_CLICKHOUSE_CLUSTER (candor),
#      CANDOR_CLICKHOUSE_CLUSTER_HTTP_PORT (18123: shard I serves HTTP on it +I-1),
#      CANDOR_CLICKHOUSE_CLUSTER_TCP_PORT (19000: native, it +I-1).
# State: $CANDOR_HOME/clickhouse-cluster/shard-I/.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HERE="$CANDOR_REPO/deploy/local"
SHARDS="${CANDOR_CLICKHOUSE_SHARD_COUNT:-2}"
NAME="${CANDOR_CLICKHOUSE_CLUSTER:-candor}"
HBASE="${CANDOR_CLICKHOUSE_CLUSTER_HTTP_PORT:-18123}"
TBASE="${CANDOR_CLICKHOUSE_CLUSTER_TCP_PORT:-19000}"
ROOT="$CANDOR_HOME/clickhouse-cluster"

addresses() {
  local i out=()
  for ((i = 1; i <= SHARDS; i++)); do out+=("127.0.0.1:$((TBASE + i - 1))"); done
  local IFS=,; echo "${out[*]}"
}

urls() {
  local i out=()
  for ((i = 1; i <= SHARDS; i++)); do out+=("http://127.0.0.1:$((HBASE + i - 1))"); done
  local IFS=,; echo "${out[*]}"
}

shard() { # shard I ACTION: run clickhouse.sh for shard I
  local i=$1
  [[ "$i" =~ ^[0-9]+$ ]] && ((i >= 1 && i <= SHARDS)) || die "shard must be 1..$SHARDS, not '$i'"
  CANDOR_CLICKHOUSE_DIR="$ROOT/shard-$i" CANDOR_CLICKHOUSE_CLUSTER="$NAME" \
  CANDOR_CLICKHOUSE_SHARDS="$(addresses)" CANDOR_CLICKHOUSE_SHARD="$i" \
  CANDOR_CLICKHOUSE_HTTP_PORT="$((HBASE + i - 1))" CANDOR_CLICKHOUSE_TCP_PORT="$((TBASE + i - 1))" \
    "$HERE/clickhouse.sh" "$2"
}

start() {
  local i
  for ((i = 1; i <= SHARDS; i++)); do
    shard "$i" start || { stop; die "clickhouse cluster failed to start at shard $i"; }
  done
  log "clickhouse cluster '$NAME' up: $(urls)"
}

stop() {
  local i
  for ((i = 1; i <= SHARDS; i++)); do shard "$i" stop & done
  wait
}

status() {
  local i
  for ((i = 1; i <= SHARDS; i++)); do
    shard "$i" status >/dev/null || { echo "down"; return 3; }
  done
  echo "up $(urls)"
}

case "${1:-}" in
  install) "$HERE/clickhouse.sh" install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  urls) urls ;;
  start-shard) shard "${2:-}" start ;;
  stop-shard) shard "${2:-}" stop ;;
  *) echo "usage: $0 install|start|stop|status|urls|start-shard I|stop-shard I" >&2; exit 2 ;;
esac
