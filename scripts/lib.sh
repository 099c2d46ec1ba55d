# Shared by scripts/redis.sh and scripts/seaweedfs.sh (sourced, not run).

# Stops the server whose pid is in "$STATE/pid" (TERM, up to 5 s, then KILL) and forgets its
# pid and env files; does nothing when none is recorded.
stop_recorded_server() {
  if [ -f "$STATE/pid" ]; then
    local pid; pid=$(cat "$STATE/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$STATE/pid" "$STATE/env"
  fi
}
