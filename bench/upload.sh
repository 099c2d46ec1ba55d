#!/usr/bin/env bash
# `gateway upload --parallel 4` of a 2 GiB file to the embedded store, against `dd … conv=fsync`
# writing the same bytes to the same disk, in the same run (release build).
#
# The gateway serves its embedded store from a folder under target/ (the disk the repository is
# on); dd writes the same 2 GiB there with bs=8M count=256 conv=fsync. The upload's figure is
# the part uploads' time, as the client reports it (`parts_ms` in --json); Complete's time
# (`complete_ms`) is printed beside it. The gateway's peak RSS (VmHWM from /proc) is read once
# the upload is done. Compare the ratio, not the absolute rates: the machine is shared.
#
# Usage: bench/upload.sh [MiB=2048] [gateway upload flags, e.g. --no-checksum]
# Needs about 3 × MiB of free disk; everything it creates is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-2048}
shift $(($# < 1 ? $# : 1))
count=$((mib / 8))

cargo build --release --quiet -p draftstore-gateway --bin gateway
bin=target/release/gateway
work=$(mktemp -d -p "$PWD/target" upload-bench.XXXXXX)
pid=
cleanup() {
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

dd if=/dev/zero of="$work/input" bs=8M count="$count" status=none
sync

start=$(date +%s%N)
dd if=/dev/zero of="$work/dd.out" bs=8M count="$count" conv=fsync status=none
dd_ns=$(($(date +%s%N) - start))
rm -f "$work/dd.out"

"$bin" upload "$work/input" --name bench.bin --endpoint "http://127.0.0.1:$port" \
  --parallel 4 --json "$@" > "$work/upload.json"
hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")

bytes=$((count * 8 * 1024 * 1024))
parts_ms=$(jq -r '.parts_ms' "$work/upload.json")
complete_ms=$(jq -r '.complete_ms' "$work/upload.json")
awk -v b="$bytes" -v dd="$dd_ns" -v up="$parts_ms" -v c="$complete_ms" -v hwm="$hwm_kib" 'BEGIN {
  dd_rate = b / (dd / 1e9) / 1048576
  up_rate = b / (up / 1e3) / 1048576
  printf "%-28s %10s\n", "bytes", b
  printf "%-28s %10.1f MiB/s (%.0f ms)\n", "dd conv=fsync", dd_rate, dd / 1e6
  printf "%-28s %10.1f MiB/s (%d ms)\n", "gateway upload --parallel 4", up_rate, up
  printf "%-28s %10.2f\n", "ratio (upload / dd)", up_rate / dd_rate
  printf "%-28s %10d ms\n", "complete", c
  printf "%-28s %10.1f MiB\n", "gateway peak RSS (VmHWM)", hwm / 1024
}'
