//! The Kubernetes manifests agree with the gateway: every variable they set is one it reads,
//! the required ones are provided, the port and grace periods line up, and the container
//! arguments parse. (Schema validity is checked by kubernetes-validate and hadolint in
//! scripts/validate-manifests.sh.)

use draftstore_gateway::config::{REQUIRED, VARIABLES};
use std::collections::BTreeMap;
use std::path::Path;

fn manifest(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../manifest")
            .join(name),
    )
    .unwrap()
}

/// The `KEY: "value"` pairs under a top-level `data:` or `stringData:` block (comments skipped).
fn block(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut inside = false;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        if inside {
            let (key, value) = line.trim().split_once(':').unwrap();
            out.insert(key.to_owned(), value.trim().trim_matches('"').to_owned());
        }
    }
    out
}

fn number_after(text: &str, key: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key}"));
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn manifests_set_only_variables_the_gateway_reads_and_all_it_needs() {
    let config = block(&manifest("configmap.yaml"), "data");
    let secret = block(&manifest("secret.yaml"), "stringData");
    assert!(!config.is_empty() && !secret.is_empty());
    for key in config.keys().chain(secret.keys()) {
        assert!(
            VARIABLES.contains(&key.as_str()),
            "{key} is set by the manifests but the gateway never reads it"
        );
    }
    for key in REQUIRED {
        assert!(
            secret.contains_key(*key) || config.contains_key(*key),
            "{key} is required but not provided"
        );
    }
    assert!(
        secret.values().all(|v| v == "REPLACE-ME"),
        "the Secret is a template: no real keys"
    );
    // A fresh install becomes ready: the pods create the buckets they need.
    assert_eq!(
        config.get("DRAFTSTORE_CREATE_BUCKETS").map(String::as_str),
        Some("true")
    );
    for key in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        assert!(!config.contains_key(key), "{key} belongs in the Secret");
    }
    for name in ["deployment.yaml", "cronjob.yaml"] {
        let text = manifest(name);
        assert!(
            text.contains("name: draftstore\n") && text.contains("name: draftstore-s3"),
            "{name} reads both"
        );
    }
}

#[test]
fn ports_grace_periods_and_arguments_line_up() {
    let config = block(&manifest("configmap.yaml"), "data");
    let deployment = manifest("deployment.yaml");
    let port = config["HTTP_PORT"].parse::<u64>().unwrap();
    assert_eq!(number_after(&deployment, "containerPort"), port);
    assert_eq!(number_after(&manifest("service.yaml"), "port"), port);
    let grace_ms: u64 = config["DRAFTSTORE_SHUTDOWN_GRACE_MS"].parse().unwrap();
    let termination = number_after(&deployment, "terminationGracePeriodSeconds");
    let pre_stop = number_after(&deployment, "seconds");
    assert!(
        termination * 1000 > grace_ms + pre_stop * 1000,
        "Kubernetes must wait longer than the gateway drains"
    );
    // The autoscaler owns the replica count: a `replicas:` in the Deployment would cut a
    // scaled-out Deployment back on every `kubectl apply`.
    assert!(
        !deployment
            .lines()
            .any(|l| l.trim_start().starts_with("replicas:")),
        "deployment.yaml must leave replicas to the HorizontalPodAutoscaler"
    );
    let hpa = manifest("hpa.yaml");
    assert!(hpa.contains("kind: Deployment\n    name: draftstore\n"));
    assert!(number_after(&hpa, "minReplicas") >= 2);
    assert!(number_after(&hpa, "maxReplicas") >= number_after(&hpa, "minReplicas"));
    // The container arguments are ones the binary accepts.
    for args in [
        vec!["gateway", "serve"],
        vec!["gateway", "sweep", "--json", "--max-duration", "3600"],
    ] {
        assert!(
            draftstore_gateway::cmd::cli::parse(args.clone()).is_ok(),
            "{args:?}"
        );
    }
    let cron = manifest("cronjob.yaml");
    assert!(
        cron.contains("schedule: \"0 2 * * *\"")
            && cron.contains("timeZone: \"Etc/UTC\"")
            && cron.contains("concurrencyPolicy: Forbid")
    );
    assert!(cron.contains(r#"args: ["sweep", "--json", "--max-duration", "3600"]"#));
    assert!(
        number_after(&cron, "activeDeadlineSeconds") > 3600,
        "the job outlives the sweep's own deadline"
    );
}

/// The embedded store's transfer rules: each variable is read, has its flag and is documented
/// in README's table.
#[test]
fn store_variables_are_read_documented_and_have_a_flag() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for (variable, flag) in [
        (
            "DRAFTSTORE_STORE_STALL_TIMEOUT_MS",
            "--store-stall-timeout-ms",
        ),
        (
            "DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES",
            "--local-max-object-bytes",
        ),
        // Not the store's, but checked the same way: read, a flag, in README's table.
        (
            "DRAFTSTORE_PUBLIC_GRPC_DISCOVERY",
            "--public-grpc-discovery",
        ),
        ("DRAFTSTORE_UI", "--ui"),
        ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "--rate-limit-replicas"),
    ] {
        assert!(VARIABLES.contains(&variable), "{variable} is read");
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with('|') && l.contains(variable)),
            "{variable} is in README's table"
        );
        let Ok(draftstore_gateway::cmd::cli::Command::Serve(args)) =
            draftstore_gateway::cmd::cli::parse(["gateway", "serve", flag, "1000"])
        else {
            panic!("{flag} is a flag of serve")
        };
        assert!(
            args.overrides().contains(&(variable, "1000".to_owned())),
            "{flag} sets {variable}"
        );
    }
}

/// The event variables: read, in README's table, each with its flag of serve (the secret's
/// flag hidden from Debug), and the secret only in the Secret.
#[test]
fn event_variables_are_read_documented_and_have_a_flag() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for (variable, flag, value) in [
        (
            "DRAFTSTORE_WEBHOOK_URLS",
            "--webhook-urls",
            "http://127.0.0.1:9/h",
        ),
        (
            "DRAFTSTORE_WEBHOOK_SECRET",
            "--webhook-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        (
            "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS",
            "--webhook-retry-schedule-ms",
            "0,10",
        ),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "--webhook-poll-ms", "100"),
        (
            "DRAFTSTORE_PRECONFIRM_URL",
            "--preconfirm-url",
            "http://127.0.0.1:9/c",
        ),
        (
            "DRAFTSTORE_PRECONFIRM_TIMEOUT_MS",
            "--preconfirm-timeout-ms",
            "100",
        ),
        (
            "DRAFTSTORE_PRECONFIRM_ON_ERROR",
            "--preconfirm-on-error",
            "allow",
        ),
    ] {
        assert!(VARIABLES.contains(&variable), "{variable} is read");
        let short = variable.rsplit_once('_').map_or(variable, |(_, tail)| tail);
        assert!(
            readme.lines().any(|l| l.starts_with('|')
                && (l.contains(variable)
                    || (l.contains("DRAFTSTORE_") && l.contains(&format!("_{short}`"))))),
            "{variable} is in README's table"
        );
        let Ok(draftstore_gateway::cmd::cli::Command::Serve(args)) =
            draftstore_gateway::cmd::cli::parse(["gateway", "serve", flag, value])
        else {
            panic!("{flag} is a flag of serve")
        };
        assert!(
            args.overrides().contains(&(variable, value.to_owned())),
            "{flag} sets {variable}"
        );
        if variable == "DRAFTSTORE_WEBHOOK_SECRET" {
            assert!(
                !format!("{args:?}").contains("MfKQ9r8"),
                "the flag's value stays out of Debug"
            );
        }
    }
    assert!(manifest("secret.yaml").contains("DRAFTSTORE_WEBHOOK_SECRET"));
    assert!(!manifest("configmap.yaml").contains("DRAFTSTORE_WEBHOOK_SECRET"));
}

/// The optional Redis component (manifest/redis/): its variables are ones the gateway reads,
/// with valid values; the URL (it may hold a password) is only in its Secret, a template; and
/// the Deployment patch keeps the base's sources while adding the Secret.
#[test]
fn the_redis_component_sets_valid_variables_and_keeps_the_url_secret() {
    let config = block(&manifest("redis/configmap.yaml"), "data");
    let secret = block(&manifest("redis/secret.yaml"), "stringData");
    assert!(config
        .keys()
        .all(|k| k.starts_with("DRAFTSTORE_RATE_LIMIT_")));
    for key in config.keys().chain(secret.keys()) {
        assert!(VARIABLES.contains(&key.as_str()), "{key} is never read");
    }
    assert_eq!(
        secret.keys().collect::<Vec<_>>(),
        ["DRAFTSTORE_RATE_LIMIT_REDIS_URL"]
    );
    assert!(secret.values().all(|v| v == "REPLACE-ME"));
    // The values parse, with a real URL in place of the placeholder.
    let mut env = config.clone();
    env.insert(
        "DRAFTSTORE_RATE_LIMIT_REDIS_URL".into(),
        "redis://:password@redis.example:6379/0".into(),
    );
    let parsed = draftstore_gateway::config::ServeConfig::from_lookup(&|k| env.get(k).cloned())
        .unwrap()
        .rate_limit_redis
        .unwrap();
    assert_eq!(
        parsed.key_prefix,
        draftstore_gateway::config::DEFAULT_KEY_PREFIX
    );
    // A pod started during an outage assumes the most replicas the autoscaler may run.
    assert_eq!(
        u64::from(parsed.replicas),
        number_after(&manifest("hpa.yaml"), "maxReplicas"),
        "DRAFTSTORE_RATE_LIMIT_REPLICAS is the HPA's maxReplicas"
    );
    let patch = manifest("redis/deployment.yaml");
    // The Deployment's name and the ConfigMap's, then both Secrets.
    assert_eq!(patch.matches("name: draftstore\n").count(), 2, "{patch}");
    for name in ["name: draftstore-s3\n", "name: draftstore-redis\n"] {
        assert!(patch.contains(name), "the patch's envFrom has {name}");
    }
    let kustomization = manifest("redis/kustomization.yaml");
    for file in ["secret.yaml", "configmap.yaml", "deployment.yaml"] {
        assert!(
            kustomization.contains(file),
            "{file} is part of the component"
        );
    }
}

/// The IRSA component (manifest/irsa, rendered and schema-checked by
/// scripts/validate-manifests.sh): a ServiceAccount annotated with a role, the Secret's AWS keys
/// removed, and both the gateway and the sweep running as that ServiceAccount. With no keys the
/// gateway takes its credentials from the chain, so the ConfigMap alone is a complete setup.
#[test]
fn the_irsa_component_runs_both_workloads_as_a_role_without_keys() {
    let kustomization = manifest("irsa/kustomization.yaml");
    assert!(kustomization.contains("kind: Component"));
    for file in [
        "serviceaccount.yaml",
        "secret-without-keys.yaml",
        "gateway-service-account.yaml",
        "sweep-service-account.yaml",
    ] {
        assert!(kustomization.contains(&format!(" {file}\n")), "{file}");
    }
    let account = manifest("irsa/serviceaccount.yaml");
    assert!(account.contains("kind: ServiceAccount") && account.contains("  name: draftstore\n"));
    assert!(account.contains("eks.amazonaws.com/role-arn: \"arn:aws:iam::"));
    let secret = block(&manifest("irsa/secret-without-keys.yaml"), "stringData");
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert_eq!(secret.get(key).map(String::as_str), Some("null"), "{key}");
        assert!(
            !REQUIRED.contains(&key),
            "{key} is not required with a role"
        );
    }
    for (file, kind, name) in [
        ("gateway-service-account.yaml", "Deployment", "draftstore"),
        ("sweep-service-account.yaml", "CronJob", "draftstore-sweep"),
    ] {
        let patch = manifest(&format!("irsa/{file}"));
        assert!(patch.contains(&format!("kind: {kind}\n")), "{file}");
        assert!(patch.contains(&format!("  name: {name}\n")), "{file}");
        assert!(patch.contains("serviceAccountName: draftstore\n"), "{file}");
        assert!(manifest(&format!("{}.yaml", kind.to_lowercase()))
            .contains(&format!("  name: {name}\n")));
    }
    // The ConfigMap's S3 settings with no keys: the credential chain.
    let config = block(&manifest("configmap.yaml"), "data");
    let s3 =
        draftstore_gateway::config::S3Config::from_lookup(&|k| config.get(k).cloned()).unwrap();
    assert_eq!(
        s3.credentials,
        draftstore_gateway::config::CredentialSource::Chain
    );
}

/// The ConfigMap's commented-out settings (an endpoint, encryption at rest) are variables the
/// gateway reads, spelled as it reads them.
#[test]
fn commented_settings_in_the_configmap_are_variables_the_gateway_reads() {
    let commented: Vec<String> = manifest("configmap.yaml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# "))
        .filter_map(|l| l.split_once(": \""))
        .map(|(key, _)| key.to_owned())
        .filter(|key| {
            key.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert!(
        commented.contains(&"DRAFTSTORE_S3_SSE".to_owned()),
        "{commented:?}"
    );
    for key in &commented {
        assert!(VARIABLES.contains(&key.as_str()), "{key}");
    }
}

/// The TLS component (manifest/tls, rendered and schema-checked by
/// scripts/validate-manifests.sh): its variables are read, documented and have flags, they
/// point into the mounted Secret's folder (mounted whole: a subPath mount never sees a
/// rotation), the probes go over HTTPS and the Service no longer says h2c.
#[test]
fn the_tls_component_mounts_the_secret_and_switches_probes_and_protocol() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for (variable, flag) in [
        ("DRAFTSTORE_TLS_CERT_FILE", "--tls-cert-file"),
        ("DRAFTSTORE_TLS_KEY_FILE", "--tls-key-file"),
    ] {
        assert!(VARIABLES.contains(&variable), "{variable} is read");
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with('|') && l.contains(variable)),
            "{variable} is in README's table"
        );
        let Ok(draftstore_gateway::cmd::cli::Command::Serve(args)) =
            draftstore_gateway::cmd::cli::parse(["gateway", "serve", flag, "/x.pem"])
        else {
            panic!("{flag} is a flag of serve")
        };
        assert!(
            args.overrides().contains(&(variable, "/x.pem".to_owned())),
            "{flag} sets {variable}"
        );
    }
    let config = block(&manifest("tls/configmap.yaml"), "data");
    assert_eq!(config.len(), 2, "{config:?}");
    let deployment = manifest("tls/deployment.yaml");
    let mount = deployment
        .lines()
        .find_map(|l| l.trim().strip_prefix("mountPath: "))
        .unwrap();
    for (key, value) in &config {
        assert!(VARIABLES.contains(&key.as_str()), "{key}");
        assert!(value.starts_with(&format!("{mount}/")), "{key}={value}");
    }
    assert!(!deployment
        .lines()
        .any(|l| l.trim_start().starts_with("subPath:")));
    assert!(deployment.contains("secretName: draftstore-tls"));
    assert_eq!(deployment.matches("scheme: HTTPS").count(), 2);
    let kustomization = manifest("tls/kustomization.yaml");
    assert!(kustomization.contains("kind: Component"));
    assert!(kustomization.contains("path: /spec/ports/0/appProtocol\n        value: https"));
    assert!(manifest("service.yaml").contains("appProtocol: kubernetes.io/h2c"));
}

/// The upload token key: read, in README's table, set by its flag of serve (hidden from
/// Debug), and offered in the Secret only.
#[test]
fn the_upload_token_secret_is_read_documented_has_a_flag_and_lives_in_the_secret() {
    let variable = "DRAFTSTORE_UPLOAD_TOKEN_SECRET";
    let value = "0123456789abcdef0123456789abcdef";
    assert!(VARIABLES.contains(&variable));
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    assert!(readme
        .lines()
        .any(|l| l.starts_with('|') && l.contains(variable)));
    let Ok(draftstore_gateway::cmd::cli::Command::Serve(args)) =
        draftstore_gateway::cmd::cli::parse(["gateway", "serve", "--upload-token-secret", value])
    else {
        panic!("--upload-token-secret is a flag of serve")
    };
    assert!(args.overrides().contains(&(variable, value.to_owned())));
    assert!(!format!("{args:?}").contains(value), "hidden from Debug");
    assert!(manifest("secret.yaml").contains(variable));
    assert!(!manifest("configmap.yaml").contains(variable));
    // A key too short for HMAC-SHA256 is refused, naming the variable and not the value.
    let short = "too short";
    let e = draftstore_gateway::config::ServeConfig::from_lookup(&|k| {
        (k == variable).then(|| short.to_owned())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains(variable) && !e.contains(short), "{e}");
}
