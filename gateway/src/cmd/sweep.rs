//! `gateway sweep`: one sweep of the draft bucket (core's streaming, batched, conditional
//! sweep) for the CronJob. A human summary on stderr; with `--json`, one JSON object on stdout.

use crate::cmd::cli::SweepArgs;
use crate::cmd::exit::Exit;
use crate::config::{StorageChoice, SweepConfig};
use crate::store::local::LocalStorage;
use crate::store::s3::S3Storage;
use draftstore_core::{sweep, sweep_with, SweepOptions, SweepReport};
use std::time::{Duration, Instant};

/// # Errors
/// Bad configuration (64); some deletes failed or the listing broke off (1).
pub fn run(args: &SweepArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Exit> {
    let overrides = args.overrides();
    let lookup = super::layered(&overrides, env);
    let config = SweepConfig::from_lookup(&lookup).map_err(|e| Exit::usage(e.to_string()))?;
    if !(1..=1000).contains(&args.page_size) {
        return Err(Exit::usage("--page-size must be 1..=1000"));
    }
    if !(1..=draftstore_core::MAX_SWEEP_CONCURRENCY).contains(&args.concurrency) {
        return Err(Exit::usage("--concurrency must be 1..=64"));
    }
    super::init_tracing(config.log_json, &lookup)?;
    crate::store::s3::chain::keep_sts_off_the_s3_endpoint();
    let now =
        crate::clock::unix_now().ok_or_else(|| Exit::usage("the system clock is before 1970"))?;
    let options = SweepOptions {
        dry_run: args.dry_run,
        page_size: args.page_size,
        concurrency: args.concurrency,
        ..SweepOptions::new(now, config.object_lifetime)
    };
    let started = Instant::now();
    let deadline = args.max_duration.map(|s| started + Duration::from_secs(s));
    let keep_going = || deadline.is_none_or(|d| Instant::now() < d);
    let (json, dry_run) = (args.json, args.dry_run);
    let mut on_expired = |o: &draftstore_core::ListedObject| {
        if dry_run {
            if json {
                eprintln!("would delete {} ({} bytes)", o.key, o.size);
            } else {
                println!("{}", o.key);
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    let report = match &config.storage {
        StorageChoice::S3(s3) => runtime.block_on(async {
            let storage = S3Storage::connect((**s3).clone(), crate::cmd::serve::CREDENTIALS_BUDGET)
                .await
                .map_err(|e| Exit::usage(e.to_string()))?;
            Ok::<_, Exit>(
                run_with_events(&storage, &config, options, &keep_going, &mut on_expired).await,
            )
        })?,
        StorageChoice::Local(local) => {
            let storage = LocalStorage::open_existing(local).map_err(Exit::usage)?;
            runtime.block_on(run_with_events(
                &storage,
                &config,
                options,
                &keep_going,
                &mut on_expired,
            ))
        }
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    eprintln!(
        "{}",
        summary(&report, config.buckets.draft.as_str(), dry_run, duration_ms)
    );
    if json {
        println!("{}", json_report(&report, dry_run, duration_ms));
    }
    if report.is_clean() {
        Ok(())
    } else {
        let why = report.listing_error.as_ref().map_or_else(
            || format!("{} deletes failed", report.failed + report.multipart_failed),
            |e| format!("listing failed: {e}"),
        );
        Err(Exit {
            code: 1,
            message: why,
        })
    }
}

/// The sweep, with webhooks: on a store that queues `draft.expired` and `multipart.aborted`,
/// then one delivery pass over what is left in the queue (a dry run does neither).
async fn run_with_events<S: draftstore_core::Storage>(
    storage: &S,
    config: &SweepConfig,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    on_expired: &mut (dyn FnMut(&draftstore_core::ListedObject) + Send),
) -> SweepReport {
    let draft = &config.buckets.draft;
    if !config.events.webhooks() || options.dry_run {
        return sweep(storage, draft, options, keep_going, on_expired).await;
    }
    let emitting = crate::events::emit::Emitting {
        store: storage,
        queue_bucket: draft.clone(),
    };
    let report = sweep_with(storage, draft, options, keep_going, on_expired, &emitting).await;
    crate::cmd::events::deliver_once(storage, config.buckets.clone(), &config.events).await;
    report
}

fn summary(r: &SweepReport, bucket: &str, dry_run: bool, duration_ms: u64) -> String {
    // A dry run frees nothing: it says what a real run would.
    let (verb, count, bytes, aborted) = if dry_run {
        ("would delete", r.expired, r.expired_bytes, "would abort")
    } else {
        ("deleted", r.deleted, r.bytes_freed, "aborted")
    };
    let multipart = if dry_run {
        r.multipart_stale
    } else {
        r.multipart_aborted
    };
    let mut text = format!(
        "sweep of {bucket}: scanned {} drafts (and {} of DraftStore's own records, kept), expired {}, {verb} {count} ({bytes} bytes), failed {}, changed since listed {}, multipart {aborted} {multipart}, {} ms",
        r.scanned, r.reserved, r.expired, r.failed, r.changed, duration_ms
    );
    if r.stopped_early {
        text.push_str("; stopped at --max-duration, the next run continues");
    }
    for f in &r.failures {
        text.push_str(&format!("\n  failed: {}: {}", f.key, f.error));
    }
    text
}

fn json_report(r: &SweepReport, dry_run: bool, duration_ms: u64) -> serde_json::Value {
    serde_json::json!({
        "scanned": r.scanned,
        "reserved": r.reserved,
        "expired": r.expired,
        "bytes_expired": r.expired_bytes,
        "deleted": r.deleted,
        "failed": r.failed + r.multipart_failed,
        "changed": r.changed,
        "bytes_freed": r.bytes_freed,
        "multipart_stale": r.multipart_stale,
        "multipart_aborted": r.multipart_aborted,
        "duration_ms": duration_ms,
        "dry_run": dry_run,
        "stopped_early": r.stopped_early,
        "listing_error": r.listing_error.as_ref().map(ToString::to_string),
    })
}
