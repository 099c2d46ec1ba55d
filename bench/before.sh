#!/usr/bin/env bash
# Builds the gateway of an earlier commit the way a bench script builds today's, for a
# before/after measured in one run, and prints the path of its binary.
#
# The commit's tree goes to a fixed folder per commit (target/load-before/src-<commit>, made once
# with `git archive`, which keeps the commit's file times, so a second run is an up-to-date check,
# not a rebuild) and is built with `cargo build --release` and the caller's arguments into
# target/load-before. Give the very arguments today's build uses: cargo unifies dependency
# features across the packages it builds, so `-p draftstore-gateway` alone and with the bench
# binaries are not the same code (in one run, the same source measured 8-9% apart that way).
#
# Usage: bench/before.sh <git ref> <cargo build arguments...>
# Prints: target/load-before/release/gateway. Fails if the ref names no commit.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:?usage: bench/before.sh <git ref> <cargo build arguments...>}
shift
commit=$(git rev-parse --verify "$ref^{commit}")
src=target/load-before/src-$commit
if [ ! -d "$src" ]; then
  mkdir -p "$src.tmp"
  git archive "$commit" | tar -x -C "$src.tmp"
  mv "$src.tmp" "$src"
fi
cargo build --release --quiet --manifest-path "$src/Cargo.toml" --target-dir target/load-before "$@" >&2
echo target/load-before/release/gateway
