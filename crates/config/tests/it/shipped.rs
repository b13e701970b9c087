//! Every configuration file shipped with every implementation loads.

use std::path::{Path, PathBuf};

use bigbrotr_config::{
    load_yaml, BrotrFile, EgressFile, Env, Implementation, PoolFile, Problems, Validate,
};
use secrecy::ExposeSecret;

/// Top-level sections a shared configuration file may have.
const KNOWN_SECTIONS: [&str; 9] = [
    "database", "pool", "retry", "brotr", "logging", "runtime", "service", "loop", "nostr",
];

/// The repository root: this crate lives in `crates/config`.
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every implementation under the repository root.
fn implementations() -> Vec<Implementation> {
    let root = repository_root();
    let mut names: Vec<String> = std::fs::read_dir(root.join("implementations"))
        .expect("the implementations folder is readable")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.is_dir())
        .filter_map(|path| Some(path.file_name()?.to_str()?.to_owned()))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| Implementation::open(&root, name).expect("an implementation folder"))
        .collect()
}

#[test]
fn every_shipped_file_of_every_implementation_loads_without_any_variable() {
    let env = Env::empty();
    let mut loaded = Vec::new();
    for imp in implementations() {
        for (kind, file, path) in imp.list_config_files().expect("a readable config folder") {
            match file.as_str() {
                "pool" => {
                    let _: PoolFile = imp
                        .load(&kind, &file, &env)
                        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                }
                "brotr" => {
                    let _: BrotrFile = imp
                        .load(&kind, &file, &env)
                        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                }
                "egress" => {
                    let file: EgressFile = imp
                        .load(&kind, &file, &env)
                        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                    // What ships is the strict policy: tests loosen it
                    // in their own configuration only.
                    assert_eq!(
                        file,
                        EgressFile::default(),
                        "{}: the shipped egress policy must stay strict",
                        path.display()
                    );
                }
                _ => check_sections(&kind, &path, &env),
            }
            loaded.push(format!("{}/{kind}/{file}", imp.name()));
        }
    }
    for expected in [
        "bigbrotr/core/pool",
        "bigbrotr/core/brotr",
        "bigbrotr/core/egress",
        "lilbrotr/core/egress",
    ] {
        assert!(
            loaded.iter().any(|file| file == expected),
            "{expected} is not shipped; found {loaded:?}"
        );
    }
}

/// A file without a typed struct here: it must expand and parse, be a
/// mapping of sections, and outside `services` use known sections only.
fn check_sections(kind: &str, path: &Path, env: &Env) {
    let yaml = load_yaml(path, env).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let sections = match yaml {
        serde_norway::Value::Null => return,
        serde_norway::Value::Mapping(sections) => sections,
        other => panic!("{}: not a mapping of sections: {other:?}", path.display()),
    };
    for (section, _) in sections {
        let name = section
            .as_str()
            .unwrap_or_else(|| panic!("{}: section {section:?} is not a name", path.display()));
        assert!(
            kind == "services" || KNOWN_SECTIONS.contains(&name),
            "{}: unknown section `{name}`",
            path.display()
        );
    }
}

#[test]
fn the_shipped_pool_file_reaches_the_development_database_by_default() {
    let imp = Implementation::open(&repository_root(), "bigbrotr").expect("shipped");
    let file: PoolFile = imp.load("core", "pool", &Env::empty()).expect("valid");
    let defaults = PoolFile::default();
    assert_eq!(file.database.host, "127.0.0.1");
    assert_eq!(file.database.port, 56432);
    assert_eq!(file.database.database, "bigbrotr");
    assert_eq!(file.database.user, "bigbrotr");
    assert_eq!(file.database.password.expose_secret(), "bigbrotr");
    assert!(file.database.use_pgbouncer);
    assert_eq!(file.pool, defaults.pool);
    assert_eq!(file.retry, defaults.retry);
}

#[test]
fn the_shipped_pool_file_takes_the_database_from_the_environment() {
    let imp = Implementation::open(&repository_root(), "bigbrotr").expect("shipped");
    let env = Env::from_pairs([
        ("DB_HOST", "db.internal"),
        ("DB_PORT", "6432"),
        ("DB_NAME", "archive"),
        ("DB_USER", "writer"),
        ("DB_PASSWORD", "a#b: c"),
        ("BIGBROTR_POOL__MAX_SIZE", "50"),
    ]);
    let file: PoolFile = imp.load("core", "pool", &env).expect("valid");
    assert_eq!(file.database.host, "db.internal");
    assert_eq!(file.database.port, 6432);
    assert_eq!(file.database.database, "archive");
    assert_eq!(file.database.user, "writer");
    assert_eq!(file.database.password.expose_secret(), "a#b: c");
    assert_eq!(file.pool.max_size, 50);
    assert!(!format!("{file:?}").contains("a#b: c"));
    let mut problems = Problems::new();
    file.validate(&mut problems);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn the_shipped_brotr_file_holds_the_defaults() {
    let imp = Implementation::open(&repository_root(), "bigbrotr").expect("shipped");
    let file: BrotrFile = imp.load("core", "brotr", &Env::empty()).expect("valid");
    assert_eq!(file, BrotrFile::default());
}
