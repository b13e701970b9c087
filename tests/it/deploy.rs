//! The deployment files: `docker-compose.yml` is a valid Compose file by the
//! Compose Specification's own schema (vendored in `deploy/compose/`), binds
//! every published port to 127.0.0.1, and runs each service of the archive in
//! its own container of the image the `Dockerfile` builds.
//!
//! No Docker engine is needed: the file is read as YAML, its `<<` merge keys
//! applied as Compose applies them, and checked. The image build itself is
//! not exercised here.

use std::collections::BTreeSet;

use bigbrotr_test_support::workspace_root;
use serde_json::Value as Json;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// `docker-compose.yml` as JSON, merge keys applied.
fn compose() -> Json {
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML");
    yaml.apply_merge().expect("the merge keys apply");
    serde_json::to_value(yaml).expect("the YAML is JSON-compatible")
}

fn services(compose: &Json) -> &serde_json::Map<String, Json> {
    compose["services"]
        .as_object()
        .expect("docker-compose.yml has services")
}

#[test]
fn the_compose_file_is_valid_by_the_compose_specification_schema() {
    let schema: Json = serde_json::from_str(&read("deploy/compose/compose-spec.json"))
        .expect("the vendored schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let compose = compose();
    let errors: Vec<String> = validator
        .iter_errors(&compose)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "docker-compose.yml:\n{}",
        errors.join("\n")
    );
    // The schema does catch mistakes.
    let mut broken = compose.clone();
    broken["services"]["monitor"]["restart_policy"] = Json::from("always");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn every_published_port_is_bound_to_loopback() {
    let compose = compose();
    let mut published = 0;
    for (name, service) in services(&compose) {
        for port in service["ports"].as_array().into_iter().flatten() {
            published += 1;
            let bound = match port {
                Json::String(short) => short.starts_with("127.0.0.1:"),
                Json::Object(long) => long.get("host_ip") == Some(&Json::from("127.0.0.1")),
                _ => false,
            };
            assert!(bound, "service {name} publishes {port} beyond 127.0.0.1");
        }
    }
    assert!(published >= 7, "{published} ports");
}

#[test]
fn the_services_profile_runs_each_service_in_its_own_container() {
    let compose = compose();
    let services = services(&compose);
    let profiled: BTreeSet<&str> = services
        .iter()
        .filter(|(_, service)| service["profiles"] == serde_json::json!(["services"]))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        profiled,
        BTreeSet::from([
            "init",
            "monitor",
            "finder",
            "synchronizer",
            "refresher",
            "relay",
            "tor",
            "prometheus"
        ])
    );
    for name in ["monitor", "finder", "synchronizer", "refresher", "relay"] {
        let service = &services[name];
        assert_eq!(
            service["command"],
            serde_json::json!(["run", name]),
            "{name}"
        );
        assert_eq!(service["image"], "bigbrotr:local", "{name}");
        assert_eq!(
            service["depends_on"]["init"]["condition"], "service_completed_successfully",
            "{name}"
        );
        assert_eq!(service["environment"]["DB_HOST"], "pgbouncer", "{name}");
    }
    // The database services stay out of the profile: `make db-up` starts them alone.
    assert!(services["postgres"].get("profiles").is_none());
    assert!(services["pgbouncer"].get("profiles").is_none());
}

#[test]
fn the_image_holds_only_the_binary_and_the_implementations_and_runs_as_a_user() {
    let dockerfile = read("Dockerfile");
    let last_stage = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a multi-stage Dockerfile");
    let copies: Vec<&str> = last_stage
        .lines()
        .filter(|line| line.starts_with("COPY"))
        .collect();
    assert_eq!(
        copies,
        [
            "COPY --from=build /usr/local/bin/bigbrotr /usr/local/bin/bigbrotr",
            "COPY implementations/ /app/implementations/",
        ]
    );
    assert!(last_stage.lines().any(|line| line == "USER bigbrotr"));
    let ignored = read(".dockerignore");
    assert!(ignored.lines().any(|line| line == "target/"));
}
