//! The Lua scripts Redis runs for the shared limiter, each one atomic step on the server's clock
//! (replicas' clocks do not matter): [`LUA`], one decision of the token bucket of `bucket.rs`
//! (or, with a cost of 0, a charge alone: what this process granted while Redis decided
//! nothing), [`REFUND_LUA`], a token given back, and [`REPLICAS_LUA`], how many replicas
//! share the buckets.

/// One step of the token bucket of `bucket.rs`, atomically. `KEYS[1]`: the tenant's bucket (a
/// hash of `tokens` and `at`, µs of the server's clock). `ARGV[1]`: tokens when full;
/// `ARGV[2]`: µs to refill from empty; `ARGV[3]`: the deadline, µs of the server's clock (Unix
/// time): run later, the step changes nothing and answers `-1`; `ARGV[4]` (optional, 0 when
/// absent): tokens in millionths the caller granted alone while Redis decided nothing, taken
/// from the refilled bucket before this step's own token, down to `-limit × ARGV[6]` at most
/// (a debt the bucket pays back by refilling: what several replicas granted alone is charged,
/// not forgiven at 0); `ARGV[5]` (optional, 1 when absent): the tokens this step takes, 1 for
/// a decision, 0 for a charge alone; `ARGV[6]` (optional, 1 when absent): how many limits the
/// bucket may owe, the replicas but one ([`REPLICAS_LUA`]; at least 1): each replica owes at
/// most a limit, so the floor forgives nothing the replicas granted, and bounds what a charge
/// applied twice (its answer lost) costs the tenant.
///
/// Returns `{1, 0, now, left, repaired}` for a grant, `{0, µs until a token is back, now,
/// left, repaired}` otherwise, `{2, 0, now, left, repaired}` for a charge alone,
/// `{-1, 0, now, -1, 0}` past the deadline; `now` is the server's clock in µs, `left` the
/// tokens left after the step in millionths (`-limit × ARGV[6]..=limit`; the caller mirrors
/// them into its local bucket, from which it counts when Redis fails), `repaired` 1 when the
/// key held another type than a hash (a string set by hand, a damaged key): the script owns
/// every key under the prefix, so when its `HMGET` (run with `redis.pcall`, no `TYPE` first:
/// the damage is rare, a decision is not) fails with `WRONGTYPE` it deletes that key and starts
/// a full bucket rather than fail on every decision. Any other error of that `HMGET` is
/// answered as Redis raised it (Redis's, not the key's). A runtime error in the step itself
/// (computed from the key's fields) is answered as an error coded [`KEY_ERROR`]: one tenant's
/// decision failing, told by our own code rather than by Redis's wording of a script error
/// (which differs between versions). A missing key (or a `tokens` field that is NaN or
/// not a number) is a full bucket, so the key expires once it would be full again; a stored
/// `tokens` beyond what a step can leave (`-inf` or `-9e12`, which `tonumber` accepts) counts
/// as the nearest value a step can leave, `-limit × max(1, ARGV[6])..=limit`: a damaged field
/// locks a tenant out no longer than the replicas' own floor would.
pub const LUA: &str = r"
local limit = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local deadline = tonumber(ARGV[3])
local owed = tonumber(ARGV[4]) or 0
local cost = tonumber(ARGV[5]) or 1
local depth = math.max(1, tonumber(ARGV[6]) or 1)
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
if now > deadline then
  return {-1, 0, now, -1, 0}
end
local repaired = 0
local state = redis.pcall('HMGET', KEYS[1], 'tokens', 'at')
if state['err'] then
  if string.sub(state['err'], 1, 9) ~= 'WRONGTYPE' then
    return redis.error_reply(state['err'])
  end
  redis.call('DEL', KEYS[1])
  repaired = 1
  state = {}
end
local ok, step = pcall(function()
  local tokens = tonumber(state[1])
  local at = tonumber(state[2])
  if tokens == nil or at == nil or tokens ~= tokens then
    tokens = limit
    at = now
  end
  -- A damaged or hand-written field (-inf, -9e12, 1e300) counts as the nearest value a step
  -- can leave: never deeper than the replicas' floor, so it never locks a tenant out for
  -- longer than that floor takes to refill.
  tokens = math.max(-limit * depth, math.min(limit, tokens))
  local elapsed = now - at
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(limit, tokens + elapsed / per * limit)
  if owed > 0 then
    tokens = math.max(-limit * depth, tokens - owed / 1000000)
  end
  local granted = 0
  local wait = 0
  if cost == 0 then
    granted = 2
  elseif tokens >= 1 then
    tokens = tokens - 1
    granted = 1
  else
    wait = math.ceil((1 - tokens) / limit * per)
  end
  return {granted, wait, tokens, math.ceil((limit - tokens) / limit * per / 1000) + 1000}
end)
if not ok then
  return redis.error_reply('DRAFTSTORE_KEY ' .. tostring(step))
end
local granted, wait, tokens, ttl = step[1], step[2], step[3], step[4]
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {granted, wait, now, math.floor(tokens * 1000000), repaired}
";

/// The error code [`LUA`] answers a runtime error of its step with (`DRAFTSTORE_KEY <Lua's
/// message>`): a failure of that tenant's key alone, which the caller falls back for without
/// calling Redis failing.
pub const KEY_ERROR: &str = "DRAFTSTORE_KEY";

/// Gives one token back to `KEYS[1]` (never beyond `ARGV[1]`, the limit): for a grant whose
/// answer came after the gateway had given up and decided without it. A missing key is a full
/// bucket (and a key of another type nothing of ours): nothing to give back. Returns 1 when a
/// token went back.
pub const REFUND_LUA: &str = r"
local limit = tonumber(ARGV[1])
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens == nil then return 0 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', math.min(limit, tokens + 1)))
return 1
";

/// Counts the replicas sharing the buckets. `KEYS[1]`: a sorted set of replica ids, each
/// scored with the server's clock (µs) of its last probe; `ARGV[1]`: this replica's id;
/// `ARGV[2]`: µs after its last probe a replica no longer counts. Returns `{count, repaired}`:
/// how many count, this one included (1..), and 1 when the key held another type than a
/// sorted set (deleted and counted afresh rather than fail with `WRONGTYPE`, which would leave
/// every replica counting alone). Entries scored before `now - ARGV[2]` are gone (stopped
/// replicas), and so are those scored after `now + ARGV[2]`: `+inf` or a score from a Redis
/// whose clock has since stepped back (a failover to a replica behind) would otherwise count
/// forever, or for as long as the step, inflating R (and with it every replica's share and the
/// debt's floor). Scores are always numbers in a sorted set (`ZADD` refuses NaN).
pub const REPLICAS_LUA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = tonumber(ARGV[2])
local repaired = 0
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'zset' and kind ~= 'none' then
  redis.call('DEL', KEYS[1])
  repaired = 1
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[1], now + window + 1, '+inf')
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return {redis.call('ZCARD', KEYS[1]), repaired}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_script_answers_a_runtime_error_with_our_code() {
        assert!(
            LUA.contains(&format!(
                "redis.error_reply('{KEY_ERROR} ' .. tostring(step))"
            )),
            "the code per_key matches is the one the script writes"
        );
        assert!(!LUA.contains("'TYPE'"), "no TYPE per decision");
    }
}
