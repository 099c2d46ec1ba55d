#!/usr/bin/env bash
# Peak memory (RSS) of `gateway serve` (release build) under two floods of a public route:
#   1. 400 h2c connections x 256 concurrent `GET /health` streams each;
#   2. the same with the stream cap at 256 (the default before it was lowered to 100), to
#      compare in the same run;
#   3. 2000 HTTP/1.1 keep-alive connections, each kept busy with `GET /health`;
#   4. answers nobody reads: 300 h2c connections x 100 streams, each stream's window 0 (the
#      client never takes a byte), each asking for a ~15.8 KB part-urls answer (under one
#      HTTP/2 frame, so handed to h2 whole) on the embedded store, for 20 s;
#   5. answers queued on connections nobody reads: 300 h2c connections with windows of 1 GiB
#      that never read their socket (4 KiB receive buffers; bench/src/bin/unread_socket.rs),
#      each asking the same ~15.8 KB answer every 100 ms up to 100 streams, for 15 s.
# Then a normal HTTP/2 client's throughput (10 connections x 100 streams of upload-url) with the
# default stream cap and with 256: the cap bounds floods, not a client's speed.
# The peak is the kernel's high-water mark (VmHWM in /proc/PID/status), read after each flood;
# every flood gets a fresh server. Also printed: the idle RSS right after start, and how many
# requests were answered (200) or shed (503) during the flood. /health touches no storage, so
# the gateway is pointed at an S3 address nothing listens on.
#
# Usage: bench/rss.sh [REQUESTS_PER_FLOOD=400000] [GATEWAY=target/release/gateway]
# (GATEWAY: another build to compare, e.g. one built from an earlier commit, as bench/before.sh
# prints; the clients are always today's.) ONLY=REGEX runs the floods and rows whose names match.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-400000}
GATEWAY=${2:-target/release/gateway}
ONLY=${ONLY:-}
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
# 2000 connections need as many descriptors on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# The same build as bench/load.sh (the bench crate changes which dependency features are on,
# so building the gateway alone would be a second, separate build).
cargo build --release --quiet -p draftstore-gateway -p draftstore-bench --bins
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=bench/requests.sh
. bench/requests.sh   # free_port
wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "port $1 not up" >&2; cat "$work"/*.log >&2 2>/dev/null; exit 1
}
# wanted NAME : whether ONLY lets NAME run.
wanted() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# start [VAR=value...] : a fresh gateway (with those extra variables) on $port, its PID in $pid.
start() {
  port=$(free_port)
  env AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
    DRAFTSTORE_AUTH=none DRAFTSTORE_LOG=warn "$@" "$GATEWAY" serve --bind 127.0.0.1 --http-port "$port" 2>"$work/gateway.log" &
  pid=$!
  wait_port "$port"
}

# row NAME IDLE_KIB PEAK_KIB ANSWERED SHED RESET : one line of the table.
row() {
  python3 -c 'import sys; n,i,p,o,s,r=sys.argv[1:]; print(f"{n:<34}{int(i)/1024:>9.1f}{int(p)/1024:>10.1f}{o:>10}{s:>8}{r:>8}")' "$@"
}

# flood NAME STREAM_CAP H2LOAD-ARGS... : prints "name idle_MiB peak_MiB answered shed -";
# STREAM_CAP is DRAFTSTORE_MAX_CONCURRENT_STREAMS ("-": the default).
flood() {
  local name=$1 cap=$2; shift 2
  wanted "$name" || return 0
  if [ "$cap" = - ]; then start; else start DRAFTSTORE_MAX_CONCURRENT_STREAMS="$cap"; fi
  local idle; idle=$(kib "$pid" VmRSS)
  local out; out=$(h2load -n "$REQUESTS" "$@" "http://127.0.0.1:$port/health" 2>&1 || true)
  local peak; peak=$(kib "$pid" VmHWM)
  local ok; ok=$(grep -Eo '[0-9]+ 2xx' <<<"$out" | grep -Eo '^[0-9]+' || echo 0)
  local shed; shed=$(grep -Eo '[0-9]+ 5xx' <<<"$out" | grep -Eo '^[0-9]+' || echo 0)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  row "$name" "$idle" "$peak" "$ok" "$shed" -
}

# unread NAME CLIENT... : "name idle_MiB peak_MiB answered shed reset" for flood 4 or 5 on the
# embedded store, CLIENT being the command that floods (@URL and @BODY in its arguments stand for
# the part-urls URL and the file of its body). answered: 200 heads; shed: 503s; reset: small
# answers reset untaken (draftstore_small_answers_stalled_total); from /metrics after the flood.
unread() {
  local name=$1; shift
  wanted "$name" || return 0
  start DRAFTSTORE_STORAGE=local DRAFTSTORE_DATA_DIR="$work/data" DRAFTSTORE_IDLE_TIMEOUT_MS=60000
  local idle; idle=$(kib "$pid" VmRSS)
  local upload; upload=$(curl -sf -H 'content-type: application/json' -d '{"object_name":"big.bin"}' \
    "http://127.0.0.1:$port/api/v1/multipart-upload" | python3 -c 'import json,sys; print(json.load(sys.stdin)["upload_id"])')
  python3 -c 'import json,sys; print(json.dumps({"object_name":"big.bin","upload_id":sys.argv[1],"part_numbers":list(range(1,35))}))' \
    "$upload" >"$work/part-urls.json"
  local url="http://127.0.0.1:$port/api/v1/multipart-upload/part-urls" args=() arg
  for arg in "$@"; do arg=${arg//@URL/$url}; args+=("${arg//@BODY/$work/part-urls.json}"); done
  "${args[@]}" >/dev/null 2>&1 || true
  local peak; peak=$(kib "$pid" VmHWM)
  local metrics; metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
  local ok shed reset
  ok=$(awk '/^draftstore_requests_total[{]/ && /route="multipart-upload\/part-urls"/ && /status="200"/ {s+=$2} END {print s+0}' <<<"$metrics")
  shed=$(awk '/^draftstore_requests_total[{]/ && /route="multipart-upload\/part-urls"/ && /status="503"/ {s+=$2} END {print s+0}' <<<"$metrics")
  reset=$(awk '$1 == "draftstore_small_answers_stalled_total" {print $2}' <<<"$metrics")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  row "$name" "$idle" "$peak" "$ok" "$shed" "${reset:-0}"
}

# throughput NAME STREAM_CAP : req/s of a normal HTTP/2 client (10 connections x 100 streams)
# asking for upload URLs, the gateway's stream cap set as in `flood`.
throughput() {
  local name=$1 cap=$2
  wanted "$name" || return 0
  if [ "$cap" = - ]; then start; else start DRAFTSTORE_MAX_CONCURRENT_STREAMS="$cap"; fi
  printf '{"object_name": "uploads/cat.jpg"}' >"$work/upload.json"
  local args=(-c 10 -m 100 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$port/api/v1/upload-url")
  h2load -n 20000 "${args[@]}" >/dev/null 2>&1   # warm-up
  local out; out=$(h2load -n "$REQUESTS" "${args[@]}" 2>&1 || true)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  local rps; rps=$(grep -Eo '[0-9.]+ req/s' <<<"$out" | head -1 | grep -Eo '^[0-9.]+')
  local ok; ok=$(grep -Eo '[0-9]+ 2xx' <<<"$out" | grep -Eo '^[0-9]+' || echo 0)
  printf '%-34s%10s%10s\n' "$name" "$rps" "$ok"
}

echo "peak RSS (VmHWM) of a release gateway; $REQUESTS requests per flood; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s%9s%10s%10s%8s%8s\n' flood 'idle MiB' 'peak MiB' 200 503 reset
# The clients ask for 256 streams per connection; the gateway grants its stream cap.
flood "h2c-400x256-streams" - -c 400 -m 256
flood "h2c-400x256-streams (cap 256)" 256 -c 400 -m 256
flood "http1-2000-keepalive" - --h1 -c 2000 -m 1
unread "h2c-300x100-unread-15.8KB" timeout 25 h2load -n 30000 -c 300 -m 100 --rps 10 -w 0 -d @BODY \
  -H 'content-type: application/json' @URL
unread "h2c-300x100-socket-unread-15.8KB" target/release/unread-socket @URL @BODY 300 100 100 15
echo
printf '%-34s%10s%10s\n' 'h2 client, 10 conns x 100 streams' 'req/s' 200
throughput "upload-url" -
throughput "upload-url (cap 256)" 256
