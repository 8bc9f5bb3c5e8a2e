#!/usr/bin/env bash
# ClickHouse (the engine of the chdb-core wheel) serving HTTP and native TCP on 127.0.0.1.
#   clickhouse.sh start    start, wait until `SELECT 1` answers over HTTP
#   clickhouse.sh stop     KILL QUERY the serving query (clean shutdown), TERM/KILL by PID as fallback
#   clickhouse.sh status   print "up <url>" or "down", exit 0/3
# Env: CANDOR_HOME, CANDOR_CLICKHOUSE_HTTP_PORT (8123), CANDOR_CLICKHOUSE_TCP_PORT (9000).
# One shard of a cluster (set by deploy/local/clickhouse_cluster.sh): CANDOR_CLICKHOUSE_DIR
#      ($CANDOR_HOME/clickhouse), CANDOR_CLICKHOUSE_CLUSTER (name), CANDOR_CLICKHOUSE_SHARDS
#      (every shard's host:native_port), CANDOR_CLICKHOUSE_SHARD (this one, 1-based).
# Data persists in $CANDOR_HOME/clickhouse/data across restarts. Each start declares the
# portal's login (candor_portal_user) in config.d; its password is $CANDOR_HOME/privacy/portal.password.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HTTP="${CANDOR_CLICKHOUSE_HTTP_PORT:-8123}"
TCP="${CANDOR_CLICKHOUSE_TCP_PORT:-9000}"
DIR="${CANDOR_CLICKHOUSE_DIR:-$CANDOR_HOME/clickhouse}"
PIDFILE="$DIR/clickhouse.pid"
LOGFILE="$DIR/stdout.log"
URL="http://127.0.0.1:$HTTP"

http_query() { # http_query SQL -> body; fails when the server does not answer 200
  local py; py=$(venv_python)
  "$py" - "$URL" "$1" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/", data=sys.argv[2].encode())
with urllib.request.urlopen(req, timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}

ready() { http_query "SELECT 1" >/dev/null 2>&1; }

start() {
  if pid_alive "$PIDFILE"; then log "clickhouse already running (pid $(cat "$PIDFILE"))"; return 0; fi
  local py; py=$(venv_python)
  "$py" -c "import chdb._chdb" 2>/dev/null || die "chdb-core is not installed in $py: pip install 'candor[local]' (deploy/local/bootstrap.sh installs it)"
  port_free "$HTTP" || die "port $HTTP is taken by another process; set CANDOR_CLICKHOUSE_HTTP_PORT"
  port_free "$TCP" || die "port $TCP is taken by another process; set CANDOR_CLICKHOUSE_TCP_PORT"
  mkdir -p "$DIR"
  # The portal's least-privilege login (candor/portal/local_access.py): its role and
  # user go into config.d (0600, password as SHA-256 only) before the engine reads it.
  CANDOR_HOME="$CANDOR_HOME" "$py" -m candor.portal.local_access --config-dir "$DIR/config.d" \
    || die "could not declare the portal's ClickHouse user in $DIR/config.d"
  log "starting clickhouse on $URL (native 127.0.0.1:$TCP)"
  local cluster=()
  if [[ -n "${CANDOR_CLICKHOUSE_CLUSTER:-}" ]]; then
    cluster=(--cluster "$CANDOR_CLICKHOUSE_CLUSTER" --shards "${CANDOR_CLICKHOUSE_SHARDS:?}"
             --shard "${CANDOR_CLICKHOUSE_SHARD:-1}")
  fi
  setsid "$py" "$CANDOR_REPO/deploy/local/clickhouse_server.py" --dir "$DIR" \
    --http-port "$HTTP" --tcp-port "$TCP" "${cluster[@]}" >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local i
  for ((i = 0; i < 240; i++)); do
    if ! pid_alive "$PIDFILE"; then
      tail -n 20 "$LOGFILE" >&2 || true; rm -f "$PIDFILE"; die "clickhouse exited during start-up (log: $LOGFILE)"
    fi
    if ready; then log "clickhouse up at $URL (pid $(cat "$PIDFILE"), $(http_query 'SELECT version()'))"; return 0; fi
    sleep 0.25
  done
  stop; die "clickhouse did not answer on $URL within 60s (log: $LOGFILE)"
}

stop() {
  if ! pid_alive "$PIDFILE"; then rm -f "$PIDFILE"; log "clickhouse not running"; return 0; fi
  local pid i; pid=$(cat "$PIDFILE")
  http_query "KILL QUERY WHERE query LIKE '%candor-clickhouse-serve%' AND query NOT LIKE '%system.processes%' AND query NOT LIKE 'KILL%' SYNC" >/dev/null 2>&1 || true
  for ((i = 0; i < 120; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "clickhouse stopped"; return 0; }
    sleep 0.25
  done
  stop_pid "$PIDFILE" clickhouse 10
}

status() {
  if pid_alive "$PIDFILE" && ready; then echo "up $URL pid=$(cat "$PIDFILE")"; return 0; fi
  echo "down"; return 3
}

case "${1:-}" in
  install) venv_python >/dev/null ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|restart|status" >&2; exit 2 ;;
esac
