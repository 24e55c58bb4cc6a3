#!/usr/bin/env bash
# Builds the Go programs the chart's tests run (helm) with the machine's Go toolchain from the Go module
# proxy, at the pinned version, into var/go/bin; does nothing when that version is already there.
# Everything Go writes (GOPATH, GOCACHE, GOMODCACHE) stays under var/go, so `make wipe` removes it.
# Prints the path of the helm binary on its last line. Called by bootstrap.sh and by tests/deploy.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

HELM_VERSION=v3.22.0  # helm.sh/helm/v3; bump here only
K8S_MINOR=37  # the Kubernetes 1.x of the client-go that helm version is built on (v0.37 for v3.22)

# The clone's tools, whatever TEXTPULSE_VAR_DIR a stack runs with; TEXTPULSE_GO_DIR moves them.
go_root=${TEXTPULSE_GO_DIR:-$repo/var/go}
helm=$go_root/bin/helm
stamp=$go_root/bin/.helm-$HELM_VERSION-k8s1.$K8S_MINOR

if [ -x "$helm" ] && [ -f "$stamp" ]; then
  echo "$helm"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "go_tools: the Go toolchain is required to build helm $HELM_VERSION (helm v3.22 needs Go 1.26 or newer)" >&2
  exit 1
fi
mkdir -p "$go_root"
echo "go_tools: building helm $HELM_VERSION with $(go version | cut -d' ' -f3) (once per clone)" >&2
started=$(date +%s)
# The versions are stamped as helm's own release build does: `go install` alone leaves helm saying "v3.22"
# and rendering for Kubernetes 1.20.
# -modcacherw: the module cache is writable, so `make wipe` can delete it like any other file in var/.
GOPATH=$go_root GOBIN=$go_root/bin GOCACHE=$go_root/cache GOMODCACHE=$go_root/mod \
  GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local \
  go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$K8S_MINOR" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
rm -f "$go_root"/bin/.helm-* && touch "$stamp"
echo "go_tools: helm $HELM_VERSION built in $(( $(date +%s) - started )) s" >&2
echo "$helm"
