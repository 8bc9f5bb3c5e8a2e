#!/usr/bin/env bash
# The whole local stack: Kafka, ClickHouse, Prometheus on 127.0.0.1.
#   stack.sh up|down|status|install
# A failed start stops what this call started, so nothing half-started is left.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$CANDOR_REPO/deploy/local"
SERVERS=(kafka clickhouse prometheus)

case "${1:-}" in
  install)
    for s in "${SERVERS[@]}"; do "$HERE/$s.sh" install; done ;;
  up)
    started=()
    for s in "${SERVERS[@]}"; do
      was_up=0; "$HERE/$s.sh" status >/dev/null 2>&1 && was_up=1
      if ! "$HERE/$s.sh" start; then
        for t in "${started[@]}"; do "$HERE/$t.sh" stop || true; done
        die "stack up failed at $s; stopped what this call had started"
      fi
      ((was_up)) || started+=("$s")
    done ;;
  down)
    for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do "$HERE/${SERVERS[$i]}.sh" stop || true; done ;;
  status)
    rc=0
    for s in "${SERVERS[@]}"; do printf '%-11s %s\n' "$s" "$("$HERE/$s.sh" status || true)"; "$HERE/$s.sh" status >/dev/null || rc=3; done
    exit $rc ;;
  *) echo "usage: $0 up|down|status|install" >&2; exit 2 ;;
esac
