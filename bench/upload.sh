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
# rounds), not the absolute rates: the machine is shared. The load average is printed. The CPU
# time of each upload (the gateway's, read from /proc before and after, plus the client's, user
# + system; both including Complete) is printed per GiB: unlike the rates, it hardly depends on
# what else the machine runs.
#
# Usage: bench/upload.sh [MiB=2048] [rounds=3] [extra gateway upload flags]
# GATEWAY=path measures that binary instead of a fresh release build. BEFORE=<git ref> also builds
# that commit's gateway with the same build command (bench/before.sh) and measures it (its
# server on its own folder and its client) in the same rounds, for a before/after under the same
# load: its rows are `nosum-before` and `sum-before`. BEFORE_BIN=path measures a binary already
# built instead, with a warning (built apart, it may not be the same code: see bench/before.sh).
# Needs about 4 × MiB of free disk (6 × with BEFORE); everything it creates is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-2048}
rounds=${2:-3}
shift $(($# < 2 ? $# : 2))
extra=("$@")
count=$((mib / 8))
bytes=$((count * 8 * 1024 * 1024))

command -v jq > /dev/null || { echo "bench/upload.sh needs jq (apt-get install jq)" >&2; exit 1; }
build_args=(-p draftstore-gateway --bin gateway)
if [ -z "${GATEWAY:-}" ]; then
  cargo build --release --quiet "${build_args[@]}"
fi
declare -A bin port pid
bin[now]=${GATEWAY:-target/release/gateway}
sides=(now)
if [ -n "${BEFORE_BIN:-}" ]; then
  echo "warning: BEFORE_BIN=$BEFORE_BIN was not built by this script; ratios against it mix build" >&2
  echo "differences (dependency features, toolchain) into the change. BEFORE=<git ref> is the fair comparison." >&2
  bin[before]=$BEFORE_BIN
  sides+=(before)
elif [ -n "${BEFORE:-}" ]; then
  bin[before]=$(bench/before.sh "$BEFORE" "${build_args[@]}")
  sides+=(before)
fi
work=$(mktemp -d -p "$PWD/target" upload-bench.XXXXXX)
sampler=
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2> /dev/null || true; fi
  for side in "${!pid[@]}"; do
    kill "${pid[$side]}" 2> /dev/null || true
    wait "${pid[$side]}" 2> /dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Complete (and a confirm) copy the whole object on the embedded store: on a busy disk 2 GiB
# can take longer than the default 30 s request time limit, which would cut the bench.
for side in "${sides[@]}"; do
  port[$side]=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  DRAFTSTORE_DATA_DIR="$work/data-$side" DRAFTSTORE_BIND=127.0.0.1 HTTP_PORT="${port[$side]}" \
    DRAFTSTORE_LOG=warn DRAFTSTORE_REQUEST_TIMEOUT_MS=600000 "${bin[$side]}" serve > "$work/serve-$side.log" 2>&1 &
  pid[$side]=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:${port[$side]}/health" > /dev/null 2>&1 && break
    sleep 0.1
  done
done

# Random bytes (not zeros), written once; the page cache holds them as it would a user's file.
head -c "$bytes" /dev/urandom > "$work/input"
sync

# RSS samples (KiB) of the measured gateway, every 100 ms, for the whole run.
(while kill -0 "${pid[now]}" 2> /dev/null; do
  awk '/^VmRSS:/ { print $2 }' "/proc/${pid[now]}/status" 2> /dev/null || true
  sleep 0.1
done > "$work/rss.txt") &
sampler=$!

run_dd() {
  local start; start=$(date +%s%N)
  dd if="$work/input" of="$work/dd.out" bs=8M count="$count" conv=fsync status=none
  echo $((($(date +%s%N) - start) / 1000000))
  rm -f "$work/dd.out"
}

# CPU time (ms, user + system) that gateway $1 has used so far.
gateway_cpu_ms() {
  awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/${pid[$1]}/stat"
}

run_upload() { # $1: nosum|sum, $2: now|before
  local flags=() side=$2 before client
  [ "$1" = nosum ] && flags+=(--no-checksum)
  before=$(gateway_cpu_ms "$side")
  # bash's `time` reports the client's own CPU (user, system, seconds).
  client=$( { TIMEFORMAT='%U %S'; time "${bin[$side]}" upload "$work/input" --name bench.bin \
    --endpoint "http://127.0.0.1:${port[$side]}" --parallel 4 --json "${flags[@]}" "${extra[@]}" \
    > "$work/upload.json" 2> "$work/upload.log"; } 2>&1 )
  echo "$(jq -r '.parts_ms' "$work/upload.json") $(jq -r '.complete_ms' "$work/upload.json")" \
    "$(($(gateway_cpu_ms "$side") - before))" "$(echo "$client" | awk '{ print int(($1 + $2) * 1000) }')"
}

kinds=(dd nosum sum)
[ -n "${bin[before]:-}" ] && kinds+=(nosum-before sum-before)
echo "round kind ms complete_ms gateway_cpu_ms client_cpu_ms" > "$work/results.txt"
for round in $(seq 1 "$rounds"); do
  rot=$(((round - 1) % ${#kinds[@]}))
  order=("${kinds[@]:$rot}" "${kinds[@]:0:$rot}")
  for kind in "${order[@]}"; do
    sync
    case $kind in
      dd) echo "$round dd $(run_dd) 0 0 0" ;;
      *-before) echo "$round $kind $(run_upload "${kind%-before}" before)" ;;
      *) echo "$round $kind $(run_upload "$kind" now)" ;;
    esac >> "$work/results.txt"
  done
done
kill "$sampler" 2> /dev/null || true
sampler=
hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/${pid[now]}/status")
rss_peak_kib=$(sort -n "$work/rss.txt" | tail -1)

echo "$mib MiB, $rounds rounds, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v b="$bytes" -v hwm="$hwm_kib" -v rss="$rss_peak_kib" -v before="${BEFORE:+1}" '
  NR == 1 { next }
  { ms[$1, $2] = $3; cms[$1, $2] = $4; gw[$1, $2] = $5; cl[$1, $2] = $6; if ($1 > n) n = $1 }
  function rate(t) { return b / (t / 1e3) / 1048576 }
  function median(a, k,   i, j, t) {
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  function table(u_kind, s_kind, title,   r, d, u, s, ru, rs, gu, cu, gs, cs, gib) {
    printf "\n%s\n", title
    printf "| round | dd conv=fsync | upload, no checksum | vs dd | complete | upload, SHA-256 | vs dd | complete |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    gib = b / 1073741824
    for (r = 1; r <= n; r++) {
      d = rate(ms[r, "dd"]); u = rate(ms[r, u_kind]); s = rate(ms[r, s_kind])
      ru[r] = u / d; rs[r] = s / d
      gu[r] = gw[r, u_kind] / gib; cu[r] = cl[r, u_kind] / gib
      gs[r] = gw[r, s_kind] / gib; cs[r] = cl[r, s_kind] / gib
      printf "| %d | %.0f MiB/s | %.0f MiB/s | %.2f× | %d ms | %.0f MiB/s | %.2f× | %d ms |\n", r, d, u, u / d, cms[r, u_kind], s, s / d, cms[r, s_kind]
    }
    printf "median ratio: no checksum %.2f×, SHA-256 %.2f×\n", median(ru, n), median(rs, n)
    printf "CPU per GiB (median, parts + Complete): no checksum: gateway %.2f s + client %.2f s; SHA-256: gateway %.2f s + client %.2f s\n", median(gu, n) / 1e3, median(cu, n) / 1e3, median(gs, n) / 1e3, median(cs, n) / 1e3
  }
  END {
    table("nosum", "sum", "this build")
    if (before) table("nosum-before", "sum-before", "BEFORE build (same rounds)")
    printf "gateway RSS (this build): peak sampled %.1f MiB, VmHWM %.1f MiB\n", rss / 1024, hwm / 1024
  }' "$work/results.txt"
