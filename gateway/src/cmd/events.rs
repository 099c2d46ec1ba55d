//! `gateway events list|replay|deliver`: the webhook queue of the configured store, read with
//! the variables `serve` reads (the draft bucket holds the queue under `.draftstore/events/`).

use crate::cmd::cli::{EventsAction, EventsArgs};
use crate::cmd::exit::Exit;
use crate::config::{EventsConfig, StorageChoice, SweepConfig};
use crate::events::{queue, Deliverer};
use crate::store::local::LocalStorage;
use crate::store::s3::S3Storage;
use draftstore_core::{Buckets, Storage};

/// # Errors
/// Bad configuration or a malformed `--id` (64); the store failing, or `replay --id` naming
/// no queued event (1).
pub fn run(args: &EventsArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Exit> {
    let config = SweepConfig::from_lookup(env).map_err(|e| Exit::usage(e.to_string()))?;
    super::init_tracing(config.log_json, env)?;
    crate::store::s3::chain::keep_sts_off_the_s3_endpoint();
    if let Some(id) = &args.id {
        if !is_event_id(id) {
            return Err(Exit::usage(
                "--id must be an event id as `gateway events list` prints it: msg_ and 1 to 64 letters, digits, '_' or '-'",
            ));
        }
    }
    if args.action == EventsAction::Deliver && !config.events.webhooks() {
        return Err(Exit::usage(
            "DRAFTSTORE_WEBHOOK_URLS is not set: nowhere to deliver to",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    match &config.storage {
        StorageChoice::S3(s3) => runtime.block_on(async {
            let storage = S3Storage::connect((**s3).clone(), crate::cmd::serve::CREDENTIALS_BUDGET)
                .await
                .map_err(|e| Exit::usage(e.to_string()))?;
            act(&storage, args, &config).await
        }),
        StorageChoice::Local(local) => {
            let storage = LocalStorage::open_existing(local).map_err(Exit::usage)?;
            runtime.block_on(act(&storage, args, &config))
        }
    }
}

/// `msg_` and 1 to 64 of `[A-Za-z0-9_-]`: what the queue's ids look like (never a path).
fn is_event_id(id: &str) -> bool {
    id.strip_prefix("msg_").is_some_and(|rest| {
        (1..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

fn failed(e: impl std::fmt::Display) -> Exit {
    Exit {
        code: 1,
        message: e.to_string(),
    }
}

async fn act<S: Storage>(storage: &S, args: &EventsArgs, config: &SweepConfig) -> Result<(), Exit> {
    let bucket = &config.buckets.draft;
    match args.action {
        EventsAction::List => {
            for key in queue::keys(storage, bucket).await.map_err(failed)? {
                let Some((record, _)) = queue::load(storage, bucket, &key).await.map_err(failed)?
                else {
                    continue;
                };
                if args.json {
                    println!("{}", serde_json::to_string(&record).unwrap_or_default());
                } else {
                    println!(
                        "{} {} {} attempts={} {}{}",
                        record.id,
                        record.kind,
                        record.timestamp,
                        record.attempts,
                        if record.failed { "failed" } else { "pending" },
                        record
                            .last_error
                            .map(|e| format!(" last={e}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        EventsAction::Replay => {
            let mut replayed = 0u64;
            let mut found = false;
            for key in queue::keys(storage, bucket).await.map_err(failed)? {
                let Some((mut record, etag)) =
                    queue::load(storage, bucket, &key).await.map_err(failed)?
                else {
                    continue;
                };
                let chosen = match &args.id {
                    Some(id) => *id == record.id,
                    None => record.failed || args.all,
                };
                if !chosen {
                    continue;
                }
                found = true;
                // An attempt was made, so its copy into main was seen then: the reset schedule
                // must not make it wait on main again (overwritten or deleted since).
                if record.attempts > 0 || !record.done.is_empty() {
                    record.copied = true;
                }
                record.failed = false;
                record.attempts = 0;
                record.next_ms = crate::events::now_ms();
                record.lease_ms = 0;
                if queue::replace(storage, bucket, &record, &etag)
                    .await
                    .map_err(failed)?
                    .is_some()
                {
                    replayed += 1;
                }
            }
            if let (Some(id), false) = (&args.id, found) {
                return Err(failed(format!(
                    "no queued event {id}: delivered already, or never queued (see `gateway events list`)"
                )));
            }
            eprintln!("replayed {replayed} event(s)");
            if config.events.webhooks() {
                deliver_once(storage, config.buckets.clone(), &config.events).await;
            }
            Ok(())
        }
        EventsAction::Deliver => {
            deliver_once(storage, config.buckets.clone(), &config.events).await;
            Ok(())
        }
    }
}

/// One delivery pass over the queue, its counts on stderr (sweep and `gateway events`).
pub async fn deliver_once<S: Storage>(storage: &S, buckets: Buckets, config: &EventsConfig) {
    let deliverer = Deliverer::new(storage, buckets, config.clone(), crate::events::client());
    match deliverer.pass().await {
        Ok(p) => eprintln!(
            "events: {} queued, {} delivered, {} pending, {} failed",
            p.queued, p.delivered, p.pending, p.failed
        ),
        Err(e) => eprintln!("events: cannot read the queue: {e}"),
    }
}
