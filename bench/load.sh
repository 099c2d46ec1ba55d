#!/usr/bin/env bash
# Load test of `gateway serve` on a release build, against baselines built and run in the same
# script: a minimal hyper "hello" server (REST) and a tonic unary echo (gRPC).
#
# Each baseline gets the same requests as the gateway (same method, headers and body).
# For each scenario h2load sends REQUESTS requests at concurrency 50 (50 connections, one
# stream each); the server's CPU time per request comes from /proc/PID/stat, p50/p99 from
# h2load's per-request log. Upload URLs touch no storage, so no S3 server is needed: the
# gateway is pointed at an address nothing listens on.
#
# The machines are shared and noisy: every scenario runs ROUNDS times, interleaved with its
# baseline, and the round with the median CPU per request is reported.
#
# Rows marked "@6k" run at a fixed moderate rate instead of saturation: 6000 requests/s in all
# (h2load --rps, 120 per connection over 50 connections), FIXED_REQUESTS of them, where most
# production servers live. Their REST baseline is an axum 0.8 JSON route shaped like upload-url
# with no signing (bench/src/bin/axum_json.rs): the gateway signs and should still cost no more.
# "@6k-grpc-web-*", "@6k-connect-json-*" and "@6k-connect-proto-*" send the same GetUploadURL as
# gRPC-Web (application/grpc-web+proto) and Connect (application/json, application/proto), over
# HTTP/1.1 and h2c, compared with native gRPC's "@6k-GetUploadURL" on the same gateway: the codecs
# should add little.
# Rows "...-tls" are the same gRPC call over TLS (ALPN h2, a P-256 certificate made by openssl
# for the run) to a second gateway, their ratio against the plaintext gateway's row.
# With BEFORE=<git ref> (e.g. the commit before a change), that revision's gateway is built
# too (git archive, its own target dir) with the very command that builds today's, and measured
# in the same run, rows "before ...". BEFORE=<ref> is the fair comparison. BEFORE_BIN=<path>
# measures a gateway binary already built instead (a saved release build), and the script warns:
# a binary built apart (e.g. `cargo build -p draftstore-gateway` alone, without the bench
# binaries whose dependency features cargo unifies with the gateway's, or another toolchain)
# is not the same code, and in one run the same source measured 8-9% apart that way.
#
# ROWS=<regex> (bash, matched against the row name; ONLY= is the same) runs only the rows it
# matches; keep their baselines in it for a ratio. E.g.
# ROWS='^@6k-(axum-json-h1|upload-url-h1|tonic-echo|GetUploadURL|before-upload-url-h1|before-GetUploadURL)$'
# for the fixed-rate targets alone, or ROWS='^@6k-(GetUploadURL|grpc-web|connect)' for the gRPC codecs.
#
# Usage: [BEFORE=ref | BEFORE_BIN=path] [ROWS=regex] bench/load.sh [REQUESTS=100000] [ROUNDS=3] [FIXED_REQUESTS=60000]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-100000}
ROUNDS=${2:-3}
FIXED_REQUESTS=${3:-60000}
BEFORE=${BEFORE:-}
BEFORE_BIN=${BEFORE_BIN:-}
ROWS=${ROWS:-${ONLY:-}}
# The load generator gets a core of its own (CLIENT_CPUS) and every server, the gateway and
# its baselines alike, the others (SERVER_CPUS): sharing cores with h2load made the servers'
# CPU per request swing with how the scheduler interleaved them (in one run, the same
# gateway measured 1.14x the baseline pinned and 1.42x unpinned).
CPUS=$(nproc)
if [ "$CPUS" -ge 2 ]; then
  CLIENT_CPUS=${CLIENT_CPUS:-0}
  SERVER_CPUS=${SERVER_CPUS:-1-$((CPUS - 1))}
  PINNING="h2load on CPU $CLIENT_CPUS, servers on CPU $SERVER_CPUS"
else
  CLIENT_CPUS=0 SERVER_CPUS=0 PINNING="one CPU: h2load and the servers share it"
fi
client() { taskset -c "$CLIENT_CPUS" "$@"; }
# Only ever started in the background: exec keeps the PID the script reads CPU time from.
server() { exec taskset -c "$SERVER_CPUS" "$@"; }
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
# The one build command, for today's tree and for BEFORE's: building the gateway alone would
# unify other dependency features and give a different binary from the same source.
build() { cargo build --release --quiet -p draftstore-gateway -p draftstore-bench --bins "$@"; }
build
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=bench/requests.sh
. bench/requests.sh
write_upload_url_requests "$work"
wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "port $1 not up" >&2; cat "$work"/*.log >&2 2>/dev/null; exit 1
}

GW=$(free_port); HELLO=$(free_port); ECHO=$(free_port); AXUM=$(free_port); GW_BEFORE=$(free_port)
# No credentials checked: the baselines check none either (upload-url-h1-key adds an API key).
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
  DRAFTSTORE_AUTH=none DRAFTSTORE_LOG=warn server target/release/gateway serve --bind 127.0.0.1 --http-port "$GW" 2>"$work/gateway.log" &
pids+=($!); GW_PID=$!
# The same gateway as production runs it, with an API key checked on every request.
TOKEN=bench-token-0123456789abcdef
GW_KEY=$(free_port)
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
  DRAFTSTORE_AUTH=api-keys DRAFTSTORE_API_KEYS="bench $(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" \
  DRAFTSTORE_LOG=warn server target/release/gateway serve --bind 127.0.0.1 --http-port "$GW_KEY" 2>"$work/gateway-key.log" &
pids+=($!); GW_KEY_PID=$!
# The same gateway over TLS (ECDSA P-256, as most certificates issued today).
GW_TLS=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
  DRAFTSTORE_AUTH=none DRAFTSTORE_LOG=warn DRAFTSTORE_TLS_CERT_FILE="$work/tls.crt" DRAFTSTORE_TLS_KEY_FILE="$work/tls.key" \
  server target/release/gateway serve --bind 127.0.0.1 --http-port "$GW_TLS" 2>"$work/gateway-tls.log" &
pids+=($!); GW_TLS_PID=$!
wait_port "$GW"; wait_port "$GW_KEY"; wait_port "$GW_TLS"
if [ -n "$BEFORE_BIN" ]; then
  echo "warning: BEFORE_BIN=$BEFORE_BIN was not built by this script; ratios against it mix build" >&2
  echo "differences (dependency features, toolchain) into the change. BEFORE=<git ref> is the fair comparison." >&2
  BEFORE=${BEFORE:-$BEFORE_BIN}
elif [ -n "$BEFORE" ]; then
  BEFORE_BIN=$(bench/before.sh "$BEFORE" -p draftstore-gateway -p draftstore-bench --bins)
fi
if [ -n "$BEFORE" ]; then
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
    DRAFTSTORE_AUTH=none DRAFTSTORE_LOG=warn server "$BEFORE_BIN" serve --bind 127.0.0.1 --http-port "$GW_BEFORE" 2>"$work/gateway-before.log" &
  pids+=($!); GW_BEFORE_PID=$!
  wait_port "$GW_BEFORE"
fi

# The baselines answer with as many bytes as the gateway does: reply size alone changes how
# requests batch per wake-up, and so the CPU per request.
REPLY=$(upload_url_reply "$GW" "$work")
REPLY_BYTES=${#REPLY}
URL_BYTES=$(url_bytes_of "$REPLY")
server target/release/hello "$HELLO" "$REPLY_BYTES" & pids+=($!); HELLO_PID=$!
server target/release/tonic-echo "$ECHO" "$URL_BYTES" & pids+=($!); ECHO_PID=$!
server target/release/axum-json "$AXUM" "$URL_BYTES" & pids+=($!); AXUM_PID=$!
wait_port "$HELLO"; wait_port "$ECHO"; wait_port "$AXUM"

# utime and stime, in clock ticks.
ticks() { awk '{print $14 " " $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# run NAME PID H2LOAD-ARGS... : prints "name req/s cpu_us p50_us p99_us"
# N (default REQUESTS) requests; extra h2load options (--rps) in RATE.
run() {
  local name=$1 pid=$2; shift 2
  [ -z "$ROWS" ] || [[ $name =~ $ROWS ]] || return 0
  local n=${N:-$REQUESTS}
  # shellcheck disable=SC2086
  client h2load -n 2000 -c 50 -m 1 ${RATE:-} "$@" >/dev/null 2>&1   # warm-up
  local before; before=$(ticks "$pid")
  # shellcheck disable=SC2086
  local out; out=$(client h2load -n "$n" -c 50 -m 1 ${RATE:-} --log-file="$work/$name.log" "$@" 2>&1)
  local after; after=$(ticks "$pid")
  local ok; ok=$(grep -Eo '[0-9]+ succeeded' <<<"$out" | grep -Eo '^[0-9]+')
  [ "$ok" = "$n" ] || { echo "$name: only $ok of $n succeeded" >&2; echo "$out" >&2; exit 1; }
  local rps; rps=$(grep -Eo 'finished in [0-9.]+m?s, [0-9.]+ req/s' <<<"$out" | grep -Eo '[0-9.]+ req/s' | grep -Eo '^[0-9.]+')
  python3 - "$name" "$rps" "$before" "$after" "$HZ" "$n" "$work/$name.log" <<'PY'
import sys
name, rps, before, after, hz, n, log = sys.argv[1:]
(u0, s0), (u1, s1) = map(int, before.split()), map(int, after.split())
per = lambda t: t * 1e6 / int(hz) / int(n)
d = sorted(int(line.split()[2]) for line in open(log) if line.strip())
pct = lambda q: d[min(len(d) - 1, int(q * len(d)))]
print(f"{name} {float(rps):.0f} {per(u1 - u0 + s1 - s0):.2f} {per(u1 - u0):.2f} {pct(0.5)} {pct(0.99)}")
PY
}

for _ in $(seq 1 "$ROUNDS"); do
  # The baseline gets the very same request (POST, JSON body): only the handler differs.
  run hello-h1 "$HELLO_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$HELLO/api/v1/upload-url"
  run upload-url-h1 "$GW_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$GW/api/v1/upload-url"
  run upload-url-h1-key "$GW_KEY_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$GW_KEY/api/v1/upload-url"
  run hello-h2c "$HELLO_PID" -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$HELLO/api/v1/upload-url"
  run upload-url-h2c "$GW_PID" -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$GW/api/v1/upload-url"
  run tonic-echo "$ECHO_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$ECHO/draft.v1.DraftService/GetUploadURL"
  run GetUploadURL "$GW_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run GetUploadURL-tls "$GW_TLS_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "https://127.0.0.1:$GW_TLS/draft.v1.DraftService/GetUploadURL"
  # The same at a fixed 6000 requests/s in all (120 per connection).
  export N=$FIXED_REQUESTS RATE="--rps 120"
  run @6k-hello-h1 "$HELLO_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$HELLO/api/v1/upload-url"
  run @6k-axum-json-h1 "$AXUM_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$AXUM/api/v1/upload-url"
  run @6k-upload-url-h1 "$GW_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$GW/api/v1/upload-url"
  run @6k-health-h1 "$GW_PID" --h1 "http://127.0.0.1:$GW/health"
  run @6k-tonic-echo "$ECHO_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$ECHO/draft.v1.DraftService/GetUploadURL"
  run @6k-GetUploadURL "$GW_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-grpc-web-h1 "$GW_PID" --h1 -d "$work/upload.grpc" -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-connect-json-h1 "$GW_PID" --h1 -d "$work/upload.connect.json" -H 'content-type: application/json' -H 'connect-protocol-version: 1' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-grpc-web-h2c "$GW_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-connect-json-h2c "$GW_PID" -d "$work/upload.connect.json" -H 'content-type: application/json' -H 'connect-protocol-version: 1' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-connect-proto-h1 "$GW_PID" --h1 -d "$work/upload.grpc.bare" -H 'content-type: application/proto' -H 'connect-protocol-version: 1' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-connect-proto-h2c "$GW_PID" -d "$work/upload.grpc.bare" -H 'content-type: application/proto' -H 'connect-protocol-version: 1' "http://127.0.0.1:$GW/draft.v1.DraftService/GetUploadURL"
  run @6k-connect-json-tls "$GW_TLS_PID" -d "$work/upload.connect.json" -H 'content-type: application/json' -H 'connect-protocol-version: 1' "https://127.0.0.1:$GW_TLS/draft.v1.DraftService/GetUploadURL"
  run @6k-GetUploadURL-tls "$GW_TLS_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "https://127.0.0.1:$GW_TLS/draft.v1.DraftService/GetUploadURL"
  if [ -n "$BEFORE" ]; then
    run "@6k-before-upload-url-h1" "$GW_BEFORE_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$GW_BEFORE/api/v1/upload-url"
    run "@6k-before-health-h1" "$GW_BEFORE_PID" --h1 "http://127.0.0.1:$GW_BEFORE/health"
    run "@6k-before-GetUploadURL" "$GW_BEFORE_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$GW_BEFORE/draft.v1.DraftService/GetUploadURL"
    run "@6k-before-grpc-web-h2c" "$GW_BEFORE_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1' "http://127.0.0.1:$GW_BEFORE/draft.v1.DraftService/GetUploadURL"
    run "@6k-before-connect-json-h1" "$GW_BEFORE_PID" --h1 -d "$work/upload.connect.json" -H 'content-type: application/json' -H 'connect-protocol-version: 1' "http://127.0.0.1:$GW_BEFORE/draft.v1.DraftService/GetUploadURL"
    run "@6k-before-connect-json-h2c" "$GW_BEFORE_PID" -d "$work/upload.connect.json" -H 'content-type: application/json' -H 'connect-protocol-version: 1' "http://127.0.0.1:$GW_BEFORE/draft.v1.DraftService/GetUploadURL"
    unset N RATE
    run before-upload-url-h1 "$GW_BEFORE_PID" --h1 -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$GW_BEFORE/api/v1/upload-url"
    run before-upload-url-h2c "$GW_BEFORE_PID" -d "$work/upload.json" -H 'content-type: application/json' "http://127.0.0.1:$GW_BEFORE/api/v1/upload-url"
    run before-GetUploadURL "$GW_BEFORE_PID" -d "$work/upload.grpc" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$GW_BEFORE/draft.v1.DraftService/GetUploadURL"
  fi
  unset N RATE
done > "$work/results"

python3 - "$work/results" "$REQUESTS" "$PINNING" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    runs.setdefault(name, []).append(fields)
# Per scenario, the round whose CPU per request is the median.
rows = {name: sorted(rs, key=lambda r: float(r[1]))[len(rs) // 2] for name, rs in runs.items()}
rounds = len(next(iter(runs.values())))
base = {"upload-url-h1": "hello-h1", "upload-url-h1-key": "hello-h1", "upload-url-h2c": "hello-h2c", "GetUploadURL": "tonic-echo", "GetUploadURL-tls": "GetUploadURL", "@6k-GetUploadURL-tls": "@6k-GetUploadURL",
        "before-upload-url-h1": "hello-h1", "before-upload-url-h2c": "hello-h2c", "before-GetUploadURL": "tonic-echo",
        "@6k-axum-json-h1": "@6k-hello-h1", "@6k-upload-url-h1": "@6k-axum-json-h1", "@6k-health-h1": "@6k-hello-h1",
        "@6k-GetUploadURL": "@6k-tonic-echo", "@6k-grpc-web-h1": "@6k-GetUploadURL", "@6k-connect-json-h1": "@6k-GetUploadURL",
        "@6k-grpc-web-h2c": "@6k-GetUploadURL", "@6k-connect-json-h2c": "@6k-GetUploadURL",
        "@6k-connect-proto-h1": "@6k-GetUploadURL", "@6k-connect-proto-h2c": "@6k-GetUploadURL",
        "@6k-connect-json-tls": "@6k-connect-json-h2c",
        "@6k-before-upload-url-h1": "@6k-axum-json-h1",
        "@6k-before-health-h1": "@6k-hello-h1", "@6k-before-GetUploadURL": "@6k-tonic-echo",
        "@6k-before-grpc-web-h2c": "@6k-before-GetUploadURL", "@6k-before-connect-json-h2c": "@6k-before-GetUploadURL",
        "@6k-before-connect-json-h1": "@6k-before-GetUploadURL"}
print(f"{sys.argv[2]} requests per scenario (@6k rows: a fixed 6000 req/s), concurrency 50 (50 connections x 1 stream); baselines reply with as many bytes")
print(f"median of {rounds} interleaved rounds (by CPU per request); {sys.argv[3]}; load average {open('/proc/loadavg').read().split()[:3]}")
print("CPU = user + kernel time of the server process per request; over loopback the kernel part")
print("includes delivering replies to the client, so user time is shown apart too.")
print(f"{'scenario':<26}{'req/s':>9}{'CPU us':>8}{'ratio':>7}{'user us':>9}{'ratio':>7}{'p50 us':>8}{'p99 us':>8}")
# A baseline that measured 0 clock ticks (too few requests for the clock's resolution) has no
# ratio: "n/a", not a division by zero.
ratio = lambda x, y: f"{float(x) / float(y):.2f}x" if float(y) > 0 else "n/a"
for name, (rps, cpu, user, p50, p99) in rows.items():
    b = rows.get(base.get(name, ""))
    r_cpu = ratio(cpu, b[1]) if b else "base"
    r_user = ratio(user, b[2]) if b else "base"
    print(f"{name:<26}{rps:>9}{cpu:>8}{r_cpu:>7}{user:>9}{r_user:>7}{p50:>8}{p99:>8}")
PY
