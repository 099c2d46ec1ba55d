#!/usr/bin/env bash
# Instructions per request of `gateway serve` and its baselines, counted by callgrind: a
# figure that stays put on these shared machines (two runs of the same binary agree within
# about 0.5%) where CPU time per request (bench/load.sh) swings by 10-20% between runs.
#
# Each server runs under `valgrind --tool=callgrind` twice, answering N=200 and then N=2200
# requests (h2load, 10 connections, one stream each); (total(2200) - total(200)) / 2000 is
# the cost of one request, start-up and shut-down cancelled out.
#
# Caveat: valgrind does not run SHA-NI, so sha2 falls back to its software SHA-256 and a
# presign counts about 28k instructions of it; on a CPU with SHA-NI, signing is a few percent
# of the gateway's user time (perf: sha2::sha256::x86::digest_blocks). Compare the gateway
# with itself (BEFORE=<git ref>), or subtract the `sha2::sha256::compress256` figure that
# `callgrind_annotate` gives for the kept profiles, before comparing with a baseline.
#
# Rows: upload-url-h1 (REST over HTTP/1.1) and GetUploadURL (gRPC over h2c) on the gateway,
# axum-json-h1 and tonic-echo as baselines, and the same two gateway rows for BEFORE.
# Profiles are kept in target/instructions/ for callgrind_annotate.
#
# Usage: [BEFORE=ref] bench/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:-}
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
# The same build command as bench/load.sh: the same binary as the load table measures.
cargo build --release --quiet -p draftstore-gateway -p draftstore-bench --bins
GATEWAY=target/release/gateway
BEFORE_BIN=
if [ -n "$BEFORE" ]; then
  BEFORE_BIN=$(bench/before.sh "$BEFORE" -p draftstore-gateway -p draftstore-bench --bins)
fi
out=target/instructions
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=bench/requests.sh
. bench/requests.sh
write_upload_url_requests "$work"

# The baselines answer with a URL as long as the gateway's (as in bench/load.sh): asked once of
# a gateway run without valgrind.
port=$(free_port)
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
  DRAFTSTORE_AUTH=none DRAFTSTORE_LOG=warn "$GATEWAY" serve --bind 127.0.0.1 --http-port "$port" 2>/dev/null &
gateway=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
URL_BYTES=$(url_bytes_of "$(upload_url_reply "$port" "$work")")
kill "$gateway"; wait "$gateway" 2>/dev/null || true

# count ROW N SERVER... : total instructions of SERVER answering N requests of ROW's kind.
count() {
  local row=$1 n=$2; shift 2
  local port file=$out/$row.$n
  port=$(free_port)
  local args=("$@")
  args=("${args[@]//PORT/$port}")
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_ENDPOINT_URL=http://127.0.0.1:9 \
    DRAFTSTORE_AUTH=none DRAFTSTORE_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$file" "${args[@]}" 2>"$work/$row.log" &
  local pid=$!
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local report
  case $row in
    *GetUploadURL*|tonic*)
      report=$(h2load -n "$n" -c 10 -m 1 -d "$work/upload.grpc" -H 'content-type: application/grpc' \
        -H 'te: trailers' "http://127.0.0.1:$port/draft.v1.DraftService/GetUploadURL") ;;
    *)
      report=$(h2load -n "$n" -c 10 -m 1 --h1 -d "$work/upload.json" -H 'content-type: application/json' \
        "http://127.0.0.1:$port/api/v1/upload-url") ;;
  esac
  grep -q "status codes: $n 2xx" <<<"$report" || { echo "$row: not every request answered 2xx:" >&2; grep 'status codes' <<<"$report" >&2; kill "$pid"; exit 1; }
  # The gateway drains on SIGINT; the baselines end on SIGTERM. callgrind writes its profile
  # either way.
  kill -INT "$pid" 2>/dev/null; sleep 1; kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk '/^(summary|totals):/ {print $2; exit}' "$file"
}

per_request() {
  local row=$1; shift
  local a b
  a=$(count "$row" 200 "$@"); b=$(count "$row" 2200 "$@")
  printf '%-26s %9d\n' "$row" $(( (b - a) / 2000 ))
}

printf '%-26s %9s\n' scenario instr/req
per_request axum-json-h1 target/release/axum-json PORT "$URL_BYTES"
per_request upload-url-h1 "$GATEWAY" serve --bind 127.0.0.1 --http-port PORT
[ -n "$BEFORE_BIN" ] && per_request before-upload-url-h1 "$BEFORE_BIN" serve --bind 127.0.0.1 --http-port PORT
per_request tonic-echo target/release/tonic-echo PORT "$URL_BYTES"
per_request GetUploadURL "$GATEWAY" serve --bind 127.0.0.1 --http-port PORT
[ -n "$BEFORE_BIN" ] && per_request before-GetUploadURL "$BEFORE_BIN" serve --bind 127.0.0.1 --http-port PORT
exit 0
