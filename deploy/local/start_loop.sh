#!/usr/bin/env bash
# Start `candor sink --all` and `candor worker` N times (default 20), each time
# against a broker formatted a moment before, as a new user's first demo does;
# report per start whether a service died (its signal), what landed, and the
# exit statuses after SIGTERM. Exit 0 only when every start passed.
#   deploy/local/start_loop.sh [--starts N] [--port 19192] [--controller-port 19193]
#                              [--home /tmp/candor-service-starts] [--events 3000]
# Needs the ClickHouse of the local stack (or CANDOR_CLICKHOUSE_URL); the broker
# is its own (other ports, its own directory), never the stack's.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$CANDOR_REPO"
exec "$(venv_python)" -m tests.integration.service_starts "$@"
