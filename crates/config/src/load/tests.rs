//! Tests of `load`.

use super::*;
use crate::{BrotrFile, PoolFile};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::time::Duration;

fn file() -> &'static Path {
    Path::new("pool.yaml")
}

fn problems<T: ConfigFile + std::fmt::Debug>(text: &str, env: &Env) -> Vec<String> {
    match load_str::<T>(text, file(), env) {
        Err(Error::Invalid {
            file: named,
            problems,
        }) => {
            assert_eq!(named, file());
            problems.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let loaded: BrotrFile = load_str("", file(), &Env::empty()).expect("valid");
    assert_eq!(loaded, BrotrFile::default());
    let loaded: BrotrFile = load_str("# only a comment\n", file(), &Env::empty()).expect("valid");
    assert_eq!(loaded, BrotrFile::default());
}

#[test]
fn a_key_without_a_value_takes_its_default() {
    let loaded: PoolFile =
        load_str("database:\npool:\n  max_size: ~\n", file(), &Env::empty()).expect("valid");
    assert_eq!(loaded.pool, PoolFile::default().pool);
    assert_eq!(loaded.database.host, "127.0.0.1");
}

#[test]
fn the_file_overrides_the_defaults_and_the_environment_overrides_the_file() {
    let text = "database:\n  host: from-file\n  port: 6432\n  password: \"${DB_PASSWORD}\"\npool:\n  max_size: 20\n  timeout: 500ms\n";
    let env = Env::from_pairs([
        ("DB_PASSWORD", "p#ss: word"),
        ("BIGBROTR_DATABASE__HOST", "db"),
        ("BIGBROTR_DATABASE__USE_PGBOUNCER", "false"),
        ("BIGBROTR_POOL__MAX_SIZE", "50"),
        ("BIGBROTR_RETRY__INITIAL_DELAY", "0.25"),
    ]);
    let loaded: PoolFile = load_str(text, file(), &env).expect("valid");
    assert_eq!(loaded.database.host, "db");
    assert_eq!(loaded.database.port, 6432);
    assert_eq!(loaded.database.password.expose_secret(), "p#ss: word");
    assert!(!loaded.database.use_pgbouncer);
    assert_eq!(loaded.pool.max_size, 50);
    assert_eq!(loaded.pool.timeout, Duration::from_millis(500));
    assert_eq!(loaded.retry.initial_delay, Duration::from_millis(250));
}

const SHIPPED_DATABASE: &str =
    "database:\n  host: ${DB_HOST:127.0.0.1}\n  password: \"${DB_PASSWORD:bigbrotr}\"\n";

#[test]
fn a_default_password_is_refused_for_a_database_on_another_machine() {
    let env = Env::from_pairs([("DB_HOST", "db.example.org")]);
    assert_eq!(
        problems::<PoolFile>(SHIPPED_DATABASE, &env),
        ["database.password: comes from the default of a `${VAR:default}` reference, which is meant for the development database only, and host `db.example.org` is not on this machine: set the variable (or BIGBROTR_DATABASE__PASSWORD)"]
    );
}

#[test]
fn a_default_password_is_accepted_for_the_development_database() {
    let loaded: PoolFile = load_str(SHIPPED_DATABASE, file(), &Env::empty()).expect("valid");
    assert_eq!(loaded.database.password.expose_secret(), "bigbrotr");
}

#[test]
fn a_password_from_the_environment_or_an_override_is_accepted_anywhere() {
    for password in ["DB_PASSWORD", "BIGBROTR_DATABASE__PASSWORD"] {
        let env = Env::from_pairs([("DB_HOST", "10.1.2.3"), (password, "s3cret")]);
        let loaded: PoolFile = load_str(SHIPPED_DATABASE, file(), &env).expect("valid");
        assert_eq!(loaded.database.password.expose_secret(), "s3cret");
    }
    // Set to the very value of the default, it is still the operator's choice.
    let env = Env::from_pairs([("DB_HOST", "10.1.2.3"), ("DB_PASSWORD", "bigbrotr")]);
    assert!(load_str::<PoolFile>(SHIPPED_DATABASE, file(), &env).is_ok());
}

#[test]
fn expansion_defaults_name_the_keys_whose_values_came_from_defaults() {
    let text = "a:\n  b: ${X:1}\n  c: [\"${Y:2}\", z]\n  d: ${X:}\nbare: ${Z:q}-${SET:r}\n";
    let env = Env::from_pairs([("SET", "s")]);
    let found = ExpansionDefaults::find(text, file(), &env);
    assert_eq!(
        found,
        ExpansionDefaults::of(["a.b", "a.c[0]", "a.d", "bare"])
    );
    assert!(found.gave("a.b") && !found.gave("a"));
    // A default that is YAML structure counts for the key it stands at…
    assert_eq!(
        ExpansionDefaults::find("a: ${L:[1, 2]}\n", file(), &env),
        ExpansionDefaults::of(["a"])
    );
    // …and a file that no longer parses once marked has no marked keys.
    assert_eq!(
        ExpansionDefaults::find("a: [${L:1}\n", file(), &env),
        ExpansionDefaults::none()
    );
    assert_eq!(
        ExpansionDefaults::find("a: !Tag ${X:1}\n", file(), &env),
        ExpansionDefaults::of(["a"])
    );
}

#[test]
fn an_override_of_a_string_key_stays_a_string() {
    let env = Env::from_pairs([
        ("BIGBROTR_DATABASE__PASSWORD", "1.10"),
        ("BIGBROTR_DATABASE__USER", "true"),
    ]);
    let loaded: PoolFile = load_str("", file(), &env).expect("valid");
    assert_eq!(loaded.database.password.expose_secret(), "1.10");
    assert_eq!(loaded.database.user, "true");
}

#[test]
fn overrides_of_sections_the_file_lacks_are_ignored() {
    let env = Env::from_pairs([
        ("BIGBROTR_LOGGING__LEVEL", "debug"),
        ("BIGBROTR_ROOT", "/somewhere"),
        ("BIGBROTR_POOL", "5"),
        ("BIGBROTR_POOL____MAX_SIZE", "5"),
        ("OTHER_POOL__MAX_SIZE", "5"),
    ]);
    let loaded: BrotrFile = load_str("", file(), &env).expect("valid");
    assert_eq!(loaded, BrotrFile::default());
    let loaded: PoolFile = load_str("", file(), &env).expect("valid");
    assert_eq!(loaded.pool, PoolFile::default().pool);
}

#[test]
fn a_bad_override_names_its_variable() {
    let env = Env::from_pairs([
        ("BIGBROTR_POOL__MAX_SIZ", "3"),
        ("BIGBROTR_DATABASE__PORT", "x"),
    ]);
    assert_eq!(
        problems::<PoolFile>("", &env),
        [
            "database.port: invalid type: found string \"x\", expected u16 (from environment variable BIGBROTR_DATABASE__PORT)",
            "pool.max_siz: unknown key; expected one of `min_size`, `max_size`, `timeout`, `command_timeout` (from environment variable BIGBROTR_POOL__MAX_SIZ)",
        ]
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let text = "databse: {}\npool:\n  max_szie: 3\n  zzz: 1\nbrotr: {}\n";
    assert_eq!(
        problems::<PoolFile>(text, &Env::empty()),
        [
            "brotr: unknown key; expected one of `database`, `pool`, `retry`, `role`, `roles`",
            "databse: unknown key; expected one of `database`, `pool`, `retry`, `role`, `roles`",
            "pool.max_szie: unknown key; expected one of `min_size`, `max_size`, `timeout`, `command_timeout`",
            "pool.zzz: unknown key; expected one of `min_size`, `max_size`, `timeout`, `command_timeout`",
        ]
    );
}

#[test]
fn type_errors_and_failed_checks_are_reported_together() {
    let text = "database:\n  port: 70000\n  use_pgbouncer: 3\n  host: \"\"\npool:\n  min_size: 20\n  max_size: many\n  timeout: -1\n  command_timeout: 1x\nretry:\n  exponential_base: .nan\n";
    assert_eq!(
        problems::<PoolFile>(text, &Env::empty()),
        [
            "database.port: invalid value unsigned int `70000`, expected u16",
            "database.use_pgbouncer: invalid type: found unsigned int `3`, expected a boolean",
            "pool.command_timeout: `1x` is not a duration: expected a number of seconds, or a number with a unit: ms, s, m or h",
            "pool.max_size: invalid type: found string \"many\", expected u32",
            "pool.timeout: `-1` is negative: a duration must be ≥ 0",
            "database.host: must not be empty",
            "retry.exponential_base: must be a finite number ≥ 1",
        ]
    );
}

#[test]
fn a_file_that_is_not_a_mapping_is_invalid() {
    assert_eq!(
        problems::<PoolFile>("- a\n- b\n", &Env::empty()),
        ["the file must be a mapping of sections such as `database:`, found a list"]
    );
}

#[test]
fn keys_that_are_not_scalars_are_reported() {
    assert_eq!(
        problems::<PoolFile>("pool:\n  ? [a]\n  : 1\n", &Env::empty()),
        ["pool: a key must be a string, found a list"]
    );
}

#[test]
fn invalid_yaml_is_a_parse_error_with_its_location() {
    match load_str::<PoolFile>("pool:\n  max_size: [1\n", file(), &Env::empty()) {
        Err(Error::Parse {
            file: named,
            line,
            column,
            ..
        }) => {
            assert_eq!(named, file());
            assert_eq!((line, column), (Some(3), Some(1)));
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn a_missing_variable_stops_loading() {
    assert!(matches!(
        load_str::<PoolFile>("database:\n  host: ${NOPE}\n", file(), &Env::empty()),
        Err(Error::MissingVariable { ref name, line: 2, .. }) if name == "NOPE"
    ));
}

#[test]
fn files_are_read_from_disk_and_missing_ones_are_not_found() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("brotr.yaml");
    std::fs::write(&path, "brotr:\n  batch_size: ${BATCH:7}\n").expect("writable");
    let loaded: BrotrFile = load_file(&path, &Env::empty()).expect("valid");
    assert_eq!(loaded.brotr.batch_size, 7);
    let raw = load_yaml(&path, &Env::from_pairs([("BATCH", "9")])).expect("valid");
    assert_eq!(raw["brotr"]["batch_size"], serde_norway::Value::from(9));
    let missing = dir.path().join("missing.yaml");
    assert!(matches!(
        load_file::<BrotrFile>(&missing, &Env::empty()),
        Err(Error::FileNotFound { ref path }) if *path == missing
    ));
    assert!(matches!(
        load_yaml(dir.path(), &Env::empty()),
        Err(Error::Read { ref path, .. }) if path == dir.path()
    ));
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct Listy {
    items: Vec<Item>,
    choice: Choice,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct Item {
    size: u32,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
enum Choice {
    #[default]
    Plain,
    Sized(u32),
}

impl Validate for Listy {
    fn validate(&self, problems: &mut Problems) {
        for (index, item) in self.items.iter().enumerate() {
            if item.size > 10 {
                problems.push(format!("items[{index}].size"), "must be ≤ 10");
            }
        }
    }
}

#[test]
fn problems_inside_lists_name_the_index() {
    let text = "items:\n  - size: 1\n  - size: x\n    colour: red\n  - size: 11\n";
    assert_eq!(
        problems::<Listy>(text, &Env::empty()),
        [
            "items[1].colour: unknown key; expected one of `size`",
            "items[1].size: invalid type: found string \"x\", expected u32",
            "items[2].size: must be ≤ 10",
        ]
    );
}

#[test]
fn a_list_element_of_the_wrong_type_stops_at_that_element() {
    assert_eq!(
        problems::<Listy>("items: [5]\n", &Env::empty()),
        ["items[0]: invalid type: found unsigned int `5`, expected struct Item"]
    );
}

#[test]
fn a_tagged_value_selects_an_enum_variant() {
    let loaded: Listy = load_str("choice: !Sized 4\n", file(), &Env::empty()).expect("valid");
    assert_eq!(loaded.choice, Choice::Sized(4));
}

#[test]
fn paths_display_indexes_in_brackets_and_overlap_by_segment() {
    let keys = ["logging", "outputs", "0", "level"].map(String::from);
    assert_eq!(display_path(&keys), "logging.outputs[0].level");
    assert!(overlaps("pool.max_size", "pool.max_size"));
    assert!(overlaps("pool", "pool.max_size"));
    assert!(overlaps("items[1]", "items"));
    assert!(!overlaps("pool.max", "pool.max_size"));
}

#[test]
fn nested_overrides_replace_scalars_on_their_way() {
    let mut dict = Dict::new();
    let keys = |path: &str| path.split('.').map(String::from).collect::<Vec<_>>();
    insert_path(&mut dict, &keys("a.b"), Value::from(1));
    insert_path(&mut dict, &keys("a.b.c"), Value::from(2));
    insert_path(&mut dict, &[], Value::from(3));
    assert_eq!(lookup(&dict, &keys("a.b.c")), Some(&Value::from(2)));
    assert_eq!(lookup(&dict, &keys("a.b.c.d")), None);
    assert_eq!(lookup(&dict, &[]), None);
}
