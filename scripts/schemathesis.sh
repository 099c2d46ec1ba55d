#!/usr/bin/env bash
# Checks the REST API against its OpenAPI document with schemathesis (pinned, from PyPI,
# installed into .tools/): a gateway on the embedded store in a temporary folder, every
# operation exercised with generated requests; no 5xx, every status code, content type and
# response body as documented.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.32.5
TOOLS=.tools/schemathesis-$VERSION
if [ ! -x "$TOOLS/bin/schemathesis" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS" "schemathesis==$VERSION" >&2
fi
cargo build --quiet -p draftstore-gateway --bin gateway
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
gateway="$PWD/target/debug/gateway"
# exec: the subshell becomes the gateway, so the trap below stops the gateway itself.
(cd "$data" && exec env -i PATH="$PATH" "$gateway" serve --bind 127.0.0.1 --http-port "$port" >"$data/gateway.log" 2>&1) &
gw=$!
trap 'kill $gw 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
PYTHONPATH="$TOOLS" "$TOOLS/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples 60 --seed 1 --no-color
