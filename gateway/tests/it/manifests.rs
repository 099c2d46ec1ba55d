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
    assert_eq!(number_after(&deployment, "replicas"), 3);
    // The container arguments are ones the binary accepts.
    for args in [
        vec!["gateway", "serve"],
        vec!["gateway", "sweep", "--json", "--max-duration", "3600"],
    ] {
        assert!(
            draftstore_gateway::cli::parse(args.clone()).is_ok(),
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
