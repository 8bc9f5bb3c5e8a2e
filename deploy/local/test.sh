#!/usr/bin/env bash
# The test command: set up what is missing, then run every test suite against
# real servers. The pytest session starts the local stack itself when no
# CANDOR_KAFKA_BOOTSTRAP / CANDOR_CLICKHOUSE_URL is given and no Docker engine
# answers, and stops what it started. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$CANDOR_REPO/deploy/local/bootstrap.sh"
cd "$CANDOR_REPO"
exec "$CANDOR_REPO/.venv/bin/python" -m pytest "${@:-tests}"
