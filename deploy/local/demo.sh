#!/usr/bin/env bash
# The run command: set up what is missing, bring the local stack up, create the
# topics and run the Candor demo with visible results. The stack stays up
# afterwards (`.venv/bin/candor stack status`, `.venv/bin/candor stack down`).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$CANDOR_REPO/deploy/local/bootstrap.sh"
cd "$CANDOR_REPO"
"$CANDOR_REPO/.venv/bin/candor" stack up
exec "$CANDOR_REPO/.venv/bin/candor" demo "$@"
