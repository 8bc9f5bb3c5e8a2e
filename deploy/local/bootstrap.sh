#!/usr/bin/env bash
# Prepare this machine for Candor: check Java and Maven, create .venv and install
# the project with every extra (dev, and agent, local, export: the desktop agent,
# the local stack's ClickHouse and the exports, which the demo and the tests use),
# fetch the Kafka jars, install Prometheus.
# Idempotent and quick when nothing changed (stamps on pyproject.toml and pom.xml).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

need python3 "Python 3.11 is required"
need java "install OpenJDK 17: apt-get install -y openjdk-17-jre-headless"
need mvn "install Maven: apt-get install -y maven"
need curl "apt-get install -y curl"

# Debian packages some tests drive: Xvfb + xdotool + xmessage for the desktop
# capture agent's test under a real X server; chromium + chromium-driver for the
# portal's browser tests (tests/browser, headless through selenium).
DEBS=(xvfb xdotool x11-utils tesseract-ocr chromium chromium-driver)
missing=()
for pkg in "${DEBS[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"; } >"$CANDOR_HOME/apt-test.log" 2>&1 \
      || die "apt-get install ${missing[*]} failed (log: $CANDOR_HOME/apt-test.log)"
  else
    log "warning: missing Debian packages ${missing[*]} (the desktop-agent test needs them)"
  fi
fi

VENV="$CANDOR_REPO/.venv"
STAMP="$VENV/.candor-installed"
WANT=$(cat "$CANDOR_REPO/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install -y python3-venv)"
fi
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  log "installing Candor and its dependencies into $VENV (first run takes a few minutes)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$CANDOR_REPO[dev,agent,local,export]" \
    || die "pip install failed"
  echo "$WANT" >"$STAMP"
fi
"$CANDOR_REPO/deploy/local/stack.sh" install
# helm, kubeconform and Kubernetes' JSON schemas for tests/deploy (built once, cached in
# $CANDOR_HOME/tools: ~2-3 min the first time on 2 cores, instant afterwards)
"$CANDOR_REPO/deploy/local/manifest_tools.sh" install
log "bootstrap done"
