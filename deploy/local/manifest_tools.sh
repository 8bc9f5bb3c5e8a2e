#!/usr/bin/env bash
# Offline checkers for deploy/helm and deploy/compose.yaml, built from the Go module proxy and
# cached under $CANDOR_HOME/tools (a second run is instant):
#   helm         helm.sh/helm/v3 (v3.22.0): `helm lint`, `helm template`
#   kubeconform  github.com/yannh/kubeconform (v0.8.0): manifests against JSON schemas
#   k8s schemas  generated from k8s.io/kubernetes (v1.34.1) api/openapi-spec/swagger.json by
#                deploy/local/k8s_schemas.py into $CANDOR_HOME/tools/k8s-schemas/v1.34.1
# (check-jsonschema, for the compose file, is a Python dev dependency in pyproject.toml.)
#   manifest_tools.sh install   build/fetch what is missing
#   manifest_tools.sh env       print the paths (HELM=..., KUBECONFORM=..., K8S_SCHEMAS=...)
# Env: CANDOR_HOME, CANDOR_GO (go on PATH, else /usr/local/go/bin/go).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
K8S_VERSION=v1.34.1
TOOLS="$CANDOR_HOME/tools"
BIN="$TOOLS/bin"
SCHEMAS="$TOOLS/k8s-schemas/$K8S_VERSION"

go_cmd() {
  local go="${CANDOR_GO:-}"
  [[ -n "$go" ]] || go=$(command -v go || true)
  [[ -n "$go" ]] || go=/usr/local/go/bin/go
  [[ -x "$go" ]] || die "Go is required to build helm and kubeconform (set CANDOR_GO)"
  GOPATH="$TOOLS/go" GOMODCACHE="$TOOLS/go/mod" GOCACHE="$TOOLS/go/cache" GOBIN="$BIN" \
    GOFLAGS=-mod=mod GOTOOLCHAIN=local "$go" "$@"
}

build() { # build NAME MODULE@VERSION: go install unless $BIN/NAME.version says it is there
  local name=$1 module=$2 stamp="$BIN/$1.version"
  if [[ -x "$BIN/$name" && "$(cat "$stamp" 2>/dev/null)" == "$module" ]]; then return 0; fi
  log "building $name ($module) through the Go module proxy"
  local started=$SECONDS
  go_cmd install "$module" >"$TOOLS/$name-build.log" 2>&1 \
    || { tail -n 20 "$TOOLS/$name-build.log" >&2; die "go install $module failed"; }
  echo "$module" >"$stamp"
  log "$name built in $((SECONDS - started))s"
}

schemas() {
  if [[ -f "$SCHEMAS/.done" ]]; then return 0; fi
  log "generating Kubernetes $K8S_VERSION JSON schemas"
  local dir py
  dir=$(go_cmd mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
    || die "could not fetch k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  py=$(command -v python3)
  rm -rf "$SCHEMAS.tmp"
  "$py" "$CANDOR_REPO/deploy/local/k8s_schemas.py" "$dir/api/openapi-spec/swagger.json" \
    "$SCHEMAS.tmp" >/dev/null || die "schema generation failed"
  rm -rf "$SCHEMAS" && mv "$SCHEMAS.tmp" "$SCHEMAS" && touch "$SCHEMAS/.done"
}

install() {
  mkdir -p "$BIN"
  build kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  build helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  schemas
  # the binaries and schemas are what is kept; the Go caches (~1.3 GB) only serve a rebuild
  if [[ -d "$TOOLS/go" ]]; then
    go_cmd clean -cache -modcache >/dev/null 2>&1 || true
    rm -rf "$TOOLS/go"
  fi
}

case "${1:-}" in
  install) install ;;
  env) printf 'HELM=%s\nKUBECONFORM=%s\nK8S_SCHEMAS=%s\n' "$BIN/helm" "$BIN/kubeconform" "$SCHEMAS" ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac
