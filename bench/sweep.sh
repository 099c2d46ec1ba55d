#!/usr/bin/env bash
# `gateway sweep` against its floor on SeaweedFS, in the same run (release builds).
#
# The floor (`sweep-floor floor`, bench/src/bin/sweep_floor.rs) issues the same requests as a
# sweep — ListObjectsV2 pages of 1000 and one ETag-conditional DeleteObjects batch per page —
# one after the other, with a plain reqwest + signer loop. Each round fills two buckets with N
# drafts of 100 bytes, then sweeps one with the floor and the other with `gateway sweep --json`
# (which goes first alternates by round), and prints both rates, their ratio and the sweep's
# peak RSS (VmHWM, from /usr/bin/time). Rates are deletes per second of wall time; compare the
# ratio, not the absolute figures: the machine is shared.
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

floor() {
  "$bin/sweep-floor" floor "$1" > "$work/floor.json"
}

ours() {
  /usr/bin/time -f '%M' -o "$work/rss" env OBJECT_LIFETIME=1 BUCKET_NAME="$1-main" DRAFT_BUCKET="$1" \
    "$bin/gateway" sweep --json "${@:2}" > "$work/ours.json" 2> "$work/ours.log" || {
    cat "$work/ours.log" >&2
    exit 1
  }
}

rate() { jq -r '(.deleted / (.duration_ms / 1000)) | floor' "$1"; }

run=$(date +%s)
printf '%-6s %8s %12s %12s %7s %10s\n' round drafts floor/s sweep/s ratio peak_rss
ratios=()
for round in $(seq 1 "$rounds"); do
  floor_bucket="sweep-$run-$round-floor"
  ours_bucket="sweep-$run-$round-ours"
  "$bin/sweep-floor" fill "$floor_bucket" "$drafts"
  "$bin/sweep-floor" fill "$ours_bucket" "$drafts"
  sleep 2 # OBJECT_LIFETIME=1: every draft has expired
  if [ $((round % 2)) = 1 ]; then
    floor "$floor_bucket"
    ours "$ours_bucket" "$@"
  else
    ours "$ours_bucket" "$@"
    floor "$floor_bucket"
  fi
  for f in floor ours; do
    deleted=$(jq .deleted "$work/$f.json")
    [ "$deleted" = "$drafts" ] || { echo "$f deleted $deleted of $drafts" >&2; cat "$work/$f.json" >&2; exit 1; }
  done
  floor_rate=$(rate "$work/floor.json")
  ours_rate=$(rate "$work/ours.json")
  ratio=$(jq -n "$ours_rate / $floor_rate * 100 | floor / 100")
  ratios+=("$ratio")
  printf '%-6s %8s %12s %12s %6sx %7s MB\n' "$round" "$drafts" "$floor_rate" "$ours_rate" "$ratio" \
    "$(( $(cat "$work/rss") / 1024 ))"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median ratio sweep/floor: ${median}x"
