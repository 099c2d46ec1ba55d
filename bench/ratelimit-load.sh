#!/usr/bin/env bash
# The cost of counting tenant rates in Redis instead of in the process, measured in one run on
# a release build: two gateways with the same API key (its tenant's rate high enough never to
# refuse), one counting in the process, one through a Redis started here (scripts/redis.sh).
# h2load sends the same upload-url requests to each at a fixed rate (RATE requests per second
# in total, CLIENTS connections), interleaved over ROUNDS rounds; per scenario the round with
# the median CPU per request is reported.
#
# Reported: the gateway's CPU (user + kernel) per request, with the in-process limiter as the
# baseline; Redis's own CPU per request (the shared limiter's full cost is both); p50/p99 of the
# requests; and the p99 of the Redis round trip as the gateway measured it
# (draftstore_rate_limit_redis_seconds, so an upper bucket bound).
#
# Usage: bench/ratelimit-load.sh [REQUESTS=20000] [RATE=2000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-20000}
RATE=${2:-2000}
ROUNDS=${3:-3}
CLIENTS=20
command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client >/dev/null; }
cargo build --release --quiet -p draftstore-gateway
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; scripts/redis.sh stop; rm -rf "$work"; }
trap cleanup EXIT
eval "$(scripts/redis.sh start)"
REDIS_PID=$(cat .tools/redis-run/pid)

# shellcheck source=bench/requests.sh
. bench/requests.sh   # free_port
wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "port $1 not up" >&2; cat "$work"/*.log >&2 2>/dev/null; exit 1
}

TOKEN=bench-token-0123456789abcdef
KEYS="bench $(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1) rate=4000000000/1"
gateway() { # NAME PORT [VAR=VALUE...]
  local name=$1 port=$2; shift 2
  env -i PATH="$PATH" DRAFTSTORE_STORAGE=local DRAFTSTORE_DATA_DIR="$work/$name-data" \
    DRAFTSTORE_AUTH=api-keys DRAFTSTORE_API_KEYS="$KEYS" DRAFTSTORE_LOG=warn "$@" \
    target/release/gateway serve --bind 127.0.0.1 --http-port "$port" 2>"$work/$name.log" &
  pids+=($!)
}
LOCAL=$(free_port); SHARED=$(free_port)
gateway local "$LOCAL"; LOCAL_PID=${pids[-1]}
gateway redis "$SHARED" DRAFTSTORE_RATE_LIMIT_REDIS_URL="$DRAFTSTORE_TEST_REDIS_URL"; SHARED_PID=${pids[-1]}
wait_port "$LOCAL"; wait_port "$SHARED"
curl -sf "http://127.0.0.1:$SHARED/ready" | grep -q '"rate_limit":"ok"' || { echo "the Redis gateway is not using Redis" >&2; exit 1; }
printf '{"object_name": "uploads/2026/11/photo of cat.jpg"}' > "$work/upload.json"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
PER_CLIENT=$(( (RATE + CLIENTS - 1) / CLIENTS ))

# run NAME PORT PID : prints "name req/s gateway_cpu_us redis_cpu_us p50_us p99_us"
run() {
  local name=$1 port=$2 pid=$3
  local args=(--h1 -c "$CLIENTS" -m 1 --rps="$PER_CLIENT" -d "$work/upload.json"
    -H 'content-type: application/json' -H "authorization: Bearer $TOKEN"
    "http://127.0.0.1:$port/api/v1/upload-url")
  h2load -n 1000 "${args[@]}" >/dev/null 2>&1   # warm-up
  local g0 r0 g1 r1 out
  g0=$(ticks "$pid"); r0=$(ticks "$REDIS_PID")
  out=$(h2load -n "$REQUESTS" --log-file="$work/$name.requests" "${args[@]}" 2>&1)
  g1=$(ticks "$pid"); r1=$(ticks "$REDIS_PID")
  local ok; ok=$(grep -Eo '[0-9]+ succeeded' <<<"$out" | grep -Eo '^[0-9]+')
  [ "$ok" = "$REQUESTS" ] || { echo "$name: only $ok of $REQUESTS succeeded" >&2; echo "$out" >&2; exit 1; }
  local two; two=$(awk '$2 != 200' "$work/$name.requests" | wc -l)
  [ "$two" = 0 ] || { echo "$name: $two answers were not 200" >&2; exit 1; }
  local rps; rps=$(grep -Eo 'finished in [0-9.]+m?s, [0-9.]+ req/s' <<<"$out" | grep -Eo '[0-9.]+ req/s' | grep -Eo '^[0-9.]+')
  python3 - "$name" "$rps" "$g0" "$g1" "$r0" "$r1" "$HZ" "$REQUESTS" "$work/$name.requests" <<'PY'
import sys
name, rps, g0, g1, r0, r1, hz, n, log = sys.argv[1:]
per = lambda t: t * 1e6 / int(hz) / int(n)
d = sorted(int(line.split()[2]) for line in open(log) if line.strip())
pct = lambda q: d[min(len(d) - 1, int(q * len(d)))]
print(f"{name} {float(rps):.0f} {per(int(g1) - int(g0)):.2f} {per(int(r1) - int(r0)):.2f} {pct(0.5)} {pct(0.99)}")
PY
}

for _ in $(seq 1 "$ROUNDS"); do
  run in-process "$LOCAL" "$LOCAL_PID"
  run redis "$SHARED" "$SHARED_PID"
done > "$work/results"

curl -s "http://127.0.0.1:$SHARED/metrics" > "$work/metrics"
python3 - "$work/results" "$work/metrics" "$REQUESTS" "$RATE" "$CLIENTS" <<'PY'
import sys, re
runs = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    runs.setdefault(name, []).append(fields)
rows = {name: sorted(rs, key=lambda r: float(r[1]))[len(rs) // 2] for name, rs in runs.items()}
rounds = len(next(iter(runs.values())))
print(f"{sys.argv[3]} upload-url requests (HTTP/1.1, API key) per scenario at {sys.argv[4]} req/s over {sys.argv[5]} connections")
print(f"median of {rounds} interleaved rounds (by gateway CPU per request)")
print(f"{'limiter':<12}{'req/s':>8}{'gateway CPU us':>16}{'ratio':>7}{'redis CPU us':>14}{'total ratio':>13}{'p50 us':>8}{'p99 us':>8}")
base = rows["in-process"]
for name, (rps, cpu, redis_cpu, p50, p99) in rows.items():
    ratio = float(cpu) / float(base[1])
    # Redis's CPU counts for the shared limiter only (the in-process one never calls it).
    total = (float(cpu) + (float(redis_cpu) if name == "redis" else 0.0)) / float(base[1])
    print(f"{name:<12}{rps:>8}{cpu:>16}{ratio:>6.2f}x{redis_cpu if name == 'redis' else '-':>14}{total:>12.2f}x{p50:>8}{p99:>8}")
# The Redis round trip, from the gateway's histogram (cumulative buckets): the p99's bucket bound.
buckets = []
for line in open(sys.argv[2]):
    m = re.match(r'draftstore_rate_limit_redis_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
    if m:
        buckets.append((float("inf") if m[1] == "+Inf" else float(m[1]), int(m[2])))
total = buckets[-1][1] if buckets else 0
for q in (0.5, 0.99):
    bound = next((le for le, c in buckets if total and c >= q * total), float("nan"))
    print(f"Redis round trip p{int(q * 100)} <= {bound * 1e6:.0f} us ({total} decisions, all rounds and warm-ups)")
PY
