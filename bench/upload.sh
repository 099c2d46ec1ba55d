#!/usr/bin/env bash
# `gateway upload --parallel 4` of a 2 GiB file to the embedded store, against `dd … conv=fsync`
# writing the same bytes to the same disk, in the same run (release build), in interleaved rounds.
#
# The gateway serves its embedded store from a folder under target/ (the disk the repository is
# on); dd writes the same bytes there with bs=8M conv=fsync. Each round runs dd, the upload
# without checksums (`--no-checksum`: the store hashes MD5 for the ETag) and the upload with a
# SHA-256 per part (the default: the client hashes each part before asking for its URL, the store
# hashes MD5 and SHA-256 in one pass), in an order that rotates from round to round. An upload's
# figure is its part uploads' time as the client reports it (`parts_ms` in --json); Complete's
# time (`complete_ms`) is printed beside it. The gateway's RSS is sampled every 100 ms during
# the uploads (peak printed), and VmHWM read at the end. Compare the ratios (median of the
# rounds), not the absolute rates: the machine is shared. The load average is printed.
#
# Usage: bench/upload.sh [MiB=2048] [rounds=3] [extra gateway upload flags]
# Needs about 4 × MiB of free disk; everything it creates is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-2048}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))
extra=("$@")
count=$((mib / 8))
bytes=$((count * 8 * 1024 * 1024))

command -v jq > /dev/null || { echo "bench/upload.sh needs jq (apt-get install jq)" >&2; exit 1; }
# GATEWAY=path: measure that binary instead (e.g. an earlier build, for a before/after).
if [ -z "${GATEWAY:-}" ]; then
  cargo build --release --quiet -p draftstore-gateway --bin gateway
fi
bin=${GATEWAY:-target/release/gateway}
work=$(mktemp -d -p "$PWD/target" upload-bench.XXXXXX)
pid=
sampler=
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2> /dev/null || true; fi
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DRAFTSTORE_DATA_DIR="$work/data" DRAFTSTORE_BIND=127.0.0.1 HTTP_PORT="$port" DRAFTSTORE_LOG=warn \
  "$bin" serve > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break
  sleep 0.1
done

# Random bytes (not zeros), written once; the page cache holds them as it would a user's file.
head -c "$bytes" /dev/urandom > "$work/input"
sync

# RSS samples (KiB) of the gateway, every 100 ms, for the whole run.
(while kill -0 "$pid" 2> /dev/null; do
  awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2> /dev/null || true
  sleep 0.1
done > "$work/rss.txt") &
sampler=$!

run_dd() {
  local start; start=$(date +%s%N)
  dd if="$work/input" of="$work/dd.out" bs=8M count="$count" conv=fsync status=none
  echo $((($(date +%s%N) - start) / 1000000))
  rm -f "$work/dd.out"
}

run_upload() { # $1: nosum|sum
  local flags=()
  [ "$1" = nosum ] && flags+=(--no-checksum)
  "$bin" upload "$work/input" --name bench.bin --endpoint "http://127.0.0.1:$port" \
    --parallel 4 --json "${flags[@]}" "${extra[@]}" > "$work/upload.json" 2> "$work/upload.log"
  echo "$(jq -r '.parts_ms' "$work/upload.json") $(jq -r '.complete_ms' "$work/upload.json")"
}

echo "round kind ms complete_ms" > "$work/results.txt"
for round in $(seq 1 "$rounds"); do
  order=(dd nosum sum)
  rot=$(((round - 1) % 3))
  order=("${order[@]:$rot}" "${order[@]:0:$rot}")
  for kind in "${order[@]}"; do
    sync
    if [ "$kind" = dd ]; then
      echo "$round dd $(run_dd) 0" >> "$work/results.txt"
    else
      echo "$round $kind $(run_upload "$kind")" >> "$work/results.txt"
    fi
  done
done
kill "$sampler" 2> /dev/null || true
sampler=
hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
rss_peak_kib=$(sort -n "$work/rss.txt" | tail -1)

echo "$mib MiB, $rounds rounds, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v b="$bytes" -v hwm="$hwm_kib" -v rss="$rss_peak_kib" '
  NR == 1 { next }
  { ms[$1, $2] = $3; cms[$1, $2] = $4; if ($1 > n) n = $1 }
  function rate(t) { return b / (t / 1e3) / 1048576 }
  function median(a, k,   i, j, t) {
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    printf "| round | dd conv=fsync | upload, no checksum | vs dd | complete | upload, SHA-256 | vs dd | complete |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    for (r = 1; r <= n; r++) {
      d = rate(ms[r, "dd"]); u = rate(ms[r, "nosum"]); s = rate(ms[r, "sum"])
      ru[r] = u / d; rs[r] = s / d
      printf "| %d | %.0f MiB/s | %.0f MiB/s | %.2f× | %d ms | %.0f MiB/s | %.2f× | %d ms |\n", r, d, u, u / d, cms[r, "nosum"], s, s / d, cms[r, "sum"]
    }
    printf "median ratio: no checksum %.2f×, SHA-256 %.2f×\n", median(ru, n), median(rs, n)
    printf "gateway RSS: peak sampled %.1f MiB, VmHWM %.1f MiB\n", rss / 1024, hwm / 1024
  }' "$work/results.txt"
