#!/usr/bin/env bash
# Confirm throughput and sweep deletes/s against SeaweedFS on this machine (release build).
# Usage: bench/s3-load.sh [objects] [concurrency] [sweep_objects]
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/seaweedfs.sh start)"
trap 'scripts/seaweedfs.sh stop' EXIT
export AWS_ENDPOINT_URL="$DRAFTSTORE_TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID="$DRAFTSTORE_TEST_S3_ACCESS_KEY" \
  AWS_SECRET_ACCESS_KEY="$DRAFTSTORE_TEST_S3_SECRET_KEY" AWS_REGION="$DRAFTSTORE_TEST_S3_REGION"
cargo run --release --quiet -p draftstore-bench --bin s3-load -- "$@"
