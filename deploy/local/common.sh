# Shared helpers for the deploy/local scripts. Sourced, not run.
# State lives under $CANDOR_HOME (default: <repo>/.candor), one folder per server.
set -euo pipefail

CANDOR_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CANDOR_HOME="${CANDOR_HOME:-$CANDOR_REPO/.candor}"
mkdir -p "$CANDOR_HOME"
CANDOR_HOME="$(cd "$CANDOR_HOME" && pwd)"

log() { printf '[candor %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[candor] error: %s\n' "$*" >&2; exit 1; }

need() { # need CMD "how to get it"
  command -v "$1" >/dev/null 2>&1 || die "$1 is required but not found on PATH ($2)"
}

port_free() { # port_free PORT -> 0 when nothing listens on 127.0.0.1:PORT
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_alive() { # pid_alive PIDFILE
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_port() { # wait_port PORT SECONDS PIDFILE NAME LOGFILE
  local port=$1 secs=$2 pidfile=$3 name=$4 logfile=$5 i
  for ((i = 0; i < secs * 4; i++)); do
    if ! pid_alive "$pidfile"; then
      log "$name exited during start-up; last lines of $logfile:"
      tail -n 20 "$logfile" >&2 || true
      rm -f "$pidfile"
      return 1
    fi
    if ! port_free "$port"; then return 0; fi
    sleep 0.25
  done
  log "$name did not listen on $port within ${secs}s; stopping it"
  return 1
}

stop_pid() { # stop_pid PIDFILE NAME [SECONDS]: TERM, wait, then KILL. Only our own PID.
  local pidfile=$1 name=$2 secs=${3:-30} pid i
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; log "$name not running"; return 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "$name stopped"; return 0; }
    sleep 0.25
  done
  log "$name did not stop in ${secs}s; killing pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

venv_python() {
  local py="${CANDOR_PYTHON:-$CANDOR_REPO/.venv/bin/python}"
  [[ -x "$py" ]] || die "no Python environment at $py: run deploy/local/bootstrap.sh first"
  echo "$py"
}
