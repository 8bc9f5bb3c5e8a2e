#!/usr/bin/env bash
# Prometheus (Debian's package) scraping the Candor components on 127.0.0.1.
#   prometheus.sh install   apt-get install prometheus when missing (needs root)
#   prometheus.sh start     check the config with promtool, start, wait for /-/ready
#   prometheus.sh stop      stop by PID file
#   prometheus.sh status    print "up <url>" or "down", exit 0/3
# Env: CANDOR_HOME, CANDOR_PROMETHEUS_PORT (9090).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${CANDOR_PROMETHEUS_PORT:-9090}"
DIR="$CANDOR_HOME/prometheus"
PIDFILE="$DIR/prometheus.pid"
LOGFILE="$DIR/prometheus.log"
CONF="$CANDOR_REPO/deploy/prometheus/prometheus.yml"
URL="http://127.0.0.1:$PORT"

install() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || die "prometheus is missing; install Debian's package: sudo apt-get install -y prometheus"
  log "installing Debian's prometheus package"
  apt-get update -q >"$CANDOR_HOME/apt.log" 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
    >>"$CANDOR_HOME/apt.log" 2>&1 || die "apt-get install prometheus failed (log: $CANDOR_HOME/apt.log)"
}

ready() { curl -fsS --max-time 2 "$URL/-/ready" >/dev/null 2>&1; }

start() {
  if pid_alive "$PIDFILE"; then log "prometheus already running (pid $(cat "$PIDFILE"))"; return 0; fi
  install
  port_free "$PORT" || die "port $PORT is taken by another process; set CANDOR_PROMETHEUS_PORT"
  promtool check config "$CONF" >/dev/null || die "promtool rejected $CONF"
  mkdir -p "$DIR/data"
  log "starting prometheus on $URL"
  setsid prometheus --config.file="$CONF" --storage.tsdb.path="$DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" --web.enable-lifecycle \
    --storage.tsdb.retention.time=2d >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local i
  for ((i = 0; i < 120; i++)); do
    pid_alive "$PIDFILE" || { tail -n 20 "$LOGFILE" >&2; rm -f "$PIDFILE"; die "prometheus exited during start-up (log: $LOGFILE)"; }
    if ready; then log "prometheus up at $URL (pid $(cat "$PIDFILE"))"; return 0; fi
    sleep 0.25
  done
  stop; die "prometheus not ready on $URL within 30s (log: $LOGFILE)"
}

stop() { stop_pid "$PIDFILE" prometheus 20; }

status() {
  if pid_alive "$PIDFILE" && ready; then echo "up $URL pid=$(cat "$PIDFILE")"; return 0; fi
  echo "down"; return 3
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|restart|status" >&2; exit 2 ;;
esac
