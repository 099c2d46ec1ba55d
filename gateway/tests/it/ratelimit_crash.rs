//! A Redis that loses writes (killed with `appendfsync everysec`, or restarted without
//! persistence) may answer a replica's charge with a fuller bucket than the replica's own:
//! the charge it lost is one the replica already took off its debt. That answer must never
//! raise the replica's bucket, or the replica would grant those URLs again the next time it
//! counts alone (the seventh review: one replica granting at 5/s where rate / R allowed 1/s
//! through a Redis killed again and again). Real `redis-server` and `gateway serve` processes;
//! outside CI a missing Redis skips with a printed reason.

use crate::ratelimit::{redis_url, rest, wait_for_state, Process, Redis};
use crate::ratelimit_recovery::replicas;

/// One gateway, a tenant at `rate=5/3600` (nothing refills while the test runs): 3 granted
/// through Redis (2 left, mirrored), Redis stopped, the 2 left granted alone (owed: 2), Redis
/// back empty (it lost everything, the tenant's bucket too): the probe charges the 2 and Redis
/// answers that 3 are left. The replica's own count is 0, and stays 0: with Redis away again it
/// grants nothing, where mirroring the answer gave 3 more.
#[tokio::test]
async fn a_charge_answered_with_a_fuller_bucket_leaves_the_replica_at_its_own_count() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    let [gateway]: [Process; 1] = replicas(&redis, "crash", "5/3600").await;
    for _ in 0..3 {
        assert_eq!(rest(gateway.port, "acme").await.0, 200, "through Redis");
    }
    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(rest(gateway.port, "acme").await.0);
    }
    assert_eq!(statuses, [200, 200, 429, 429], "the 2 left, alone");
    // Back without the tenant's bucket: the charge's answer says 5 - 2 = 3 left.
    redis.restart();
    wait_for_state(gateway.port, "ok").await;
    assert_eq!(
        gateway
            .metric("draftstore_rate_limit_redis_calls_total{outcome=\"charged\"}")
            .await,
        1.0,
        "the probe charged the debt"
    );
    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(rest(gateway.port, "acme").await.0);
    }
    assert_eq!(
        statuses,
        [429, 429, 429, 429],
        "counted on from its own 0, not from the 3 the charge's answer said"
    );
}
