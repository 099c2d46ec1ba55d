#!/usr/bin/env bash
# `gateway sweep` against its floor on SeaweedFS, in the same run (release builds).
#
# The floor (`sweep-floor floor`, bench/src/bin/sweep_floor.rs) issues the same requests as a
# sweep — ListObjectsV2 pages of 1000, one ETag-conditional DeleteObjects batch per page, one
# ListMultipartUploads — one after the other, with a plain reqwest + signer loop. Each round
# fills a bucket with N drafts of 100 bytes and sweeps it, three times: with the floor, with
# `gateway sweep --json`, and with `gateway sweep --json` with webhooks on (a local receiver
# answering 204; one `draft.expired` per batch, delivered at the end), in an order that turns
# by round, and prints the rates, the ratios to the floor and the sweeps' peak RSS (VmHWM, from
# /usr/bin/time). Rates are deletes per second of wall time; compare the ratios, not the
# absolute figures: the machine is shared.
#
# Usage: bench/sweep.sh [drafts=10000] [rounds=3] [gateway sweep flags…]
# Uses the server in DRAFTSTORE_TEST_S3_* when set, else starts (and stops) SeaweedFS.
set -euo pipefail
cd "$(dirname "$0")/.."
drafts=${1:-10000}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))

cargo build --release --quiet -p draftstore-gateway --bin gateway -p draftstore-bench --bin sweep-floor
work=$(mktemp -d)
started=0
cleanup() {
  rm -rf "$work"
  if [ "$started" = 1 ]; then scripts/seaweedfs.sh stop; fi
}
trap cleanup EXIT
if [ -z "${DRAFTSTORE_TEST_S3_ENDPOINT:-}" ]; then
  eval "$(scripts/seaweedfs.sh start)"
  started=1
fi
export AWS_ENDPOINT_URL="$DRAFTSTORE_TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID="$DRAFTSTORE_TEST_S3_ACCESS_KEY" \
  AWS_SECRET_ACCESS_KEY="$DRAFTSTORE_TEST_S3_SECRET_KEY" AWS_REGION="$DRAFTSTORE_TEST_S3_REGION"
bin=target/release

receiver_port=$((30000 + RANDOM % 20000))
python3 - "$receiver_port" > "$work/received" 2>/dev/null <<'PY' &
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()
        print(self.headers.get("webhook-id"), flush=True)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
receiver=$!
trap 'kill "$receiver" 2>/dev/null; cleanup' EXIT
secret="whsec_$(head -c 24 /dev/urandom | base64)"

floor() {
  "$bin/sweep-floor" floor "$1" > "$work/floor.json"
}

# ours OUTPUT BUCKET [env…] -- [flags…]
ours() {
  local out=$1 bucket=$2
  shift 2
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  /usr/bin/time -f '%M' -o "$work/$out.rss" env OBJECT_LIFETIME=1 BUCKET_NAME="$bucket-main" \
    DRAFT_BUCKET="$bucket" "${vars[@]}" "$bin/gateway" sweep --json "$@" > "$work/$out.json" \
    2> "$work/$out.log" || {
    cat "$work/$out.log" >&2
    exit 1
  }
}

rate() { jq -r '(.deleted / (.duration_ms / 1000)) | floor' "$1"; }
ratio() { jq -n "$1 / $2 * 100 | floor / 100"; }

run=$(date +%s)
echo "# $(uptime)"
printf '%-6s %8s %10s %10s %7s %10s %7s %9s %9s\n' round drafts floor/s sweep/s ratio events/s ratio rss_MB ev_rss_MB
ratios=()
events_ratios=()
for round in $(seq 1 "$rounds"); do
  b="sweep-$run-$round"
  steps=(floor ours events)
  for i in 0 1 2; do
    # Each sweep right after filling its own bucket: SeaweedFS's background work after a fill
    # (and after a sweep) then weighs the same on each.
    step=${steps[$(( (i + round) % 3 ))]}
    "$bin/sweep-floor" fill "$b-$step" "$drafts"
    sleep 2 # OBJECT_LIFETIME=1: every draft has expired
    case $step in
      floor) floor "$b-floor" ;;
      ours) ours ours "$b-ours" -- "$@" ;;
      events) ours events "$b-events" DRAFTSTORE_WEBHOOK_URLS="http://127.0.0.1:$receiver_port/hook" \
        DRAFTSTORE_WEBHOOK_SECRET="$secret" -- "$@" ;;
    esac
  done
  for f in floor ours events; do
    deleted=$(jq .deleted "$work/$f.json")
    [ "$deleted" = "$drafts" ] || { echo "$f deleted $deleted of $drafts" >&2; cat "$work/$f.json" >&2; exit 1; }
  done
  floor_rate=$(rate "$work/floor.json")
  ours_rate=$(rate "$work/ours.json")
  events_rate=$(rate "$work/events.json")
  ratios+=("$(ratio "$ours_rate" "$floor_rate")")
  events_ratios+=("$(ratio "$events_rate" "$floor_rate")")
  printf '%-6s %8s %10s %10s %6sx %10s %6sx %9s %9s\n' "$round" "$drafts" "$floor_rate" "$ours_rate" \
    "${ratios[-1]}" "$events_rate" "${events_ratios[-1]}" "$(( $(cat "$work/ours.rss") / 1024 ))" \
    "$(( $(cat "$work/events.rss") / 1024 ))"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median ratio sweep/floor: $(median "${ratios[@]}")x; with webhooks: $(median "${events_ratios[@]}")x"
echo "events received: $(sort -u "$work/received" | wc -l) distinct ids, $(wc -l < "$work/received") deliveries"
echo "# $(uptime)"
