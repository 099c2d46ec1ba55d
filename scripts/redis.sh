#!/usr/bin/env bash
# Installs (Debian's redis-server package, when missing) and starts/stops a Redis server on a
# free 127.0.0.1 port for the shared rate-limit tests.
#
#   scripts/redis.sh start   # prints `export DRAFTSTORE_TEST_REDIS_*=...` lines for eval
#   scripts/redis.sh stop
#
# No persistence, no password, loopback only. The tests stop and restart the same server on the
# same port (DRAFTSTORE_TEST_REDIS_SERVER, _PORT) to check what the gateway does while it is gone.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.tools/redis-run"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

install() {
  if ! command -v redis-server >/dev/null; then
    echo "installing redis-server (Debian package)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  fi
  redis-server --version >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  install
  stop_quiet
  mkdir -p "$STATE"
  local port; port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
    --protected-mode yes --dir "$STATE" > "$STATE/redis.log" 2>&1 &
  echo $! > "$STATE/pid"
  for _ in $(seq 1 100); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
      cat > "$STATE/env" <<ENV
export DRAFTSTORE_TEST_REDIS_URL=redis://127.0.0.1:$port
export DRAFTSTORE_TEST_REDIS_PORT=$port
export DRAFTSTORE_TEST_REDIS_SERVER=$(command -v redis-server)
ENV
      cat "$STATE/env"
      echo "redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') ready on 127.0.0.1:$port" >&2
      return
    fi
    kill -0 "$(cat "$STATE/pid")" 2>/dev/null || { tail -20 "$STATE/redis.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "redis did not become ready in 10 s" >&2
  exit 1
}

stop_quiet() {
  stop_recorded_server
}

case "${1:-}" in
  start) start ;;
  stop) stop_quiet ;;
  install) install ;;
  *) echo "usage: $0 start|stop|install" >&2; exit 64 ;;
esac
