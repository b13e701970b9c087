//! The root folder the synchronizer runs with: a copy of the implementation
//! whose configuration points it at the local relays, and the environment's
//! overrides it must not inherit.

use std::path::Path;

use anyhow::Context as _;
use serde_norway::{Mapping, Value};

use crate::IMPLEMENTATION;

/// The synchronizer's cycle interval in the soak run: a relay caught up is
/// synced again a second later.
const LOOP_INTERVAL: &str = "1s";
/// The synchronizer's HTTP endpoint in the soak run: any free port on
/// loopback, so it cannot collide with a running service.
const HTTP_LISTEN: &str = "127.0.0.1:0";
/// Where the relays listen, allowed by the copied egress policy (which
/// refuses loopback by default).
const RELAY_NETWORK: &str = "127.0.0.1/32";
/// Sections of the overrides (`BIGBROTR_<SECTION>__<KEY>`) the child does
/// not inherit: the soak run sets them itself.
const OWN_SECTIONS: [&str; 6] = [
    "SERVICE",
    "LOOP",
    "NOSTR",
    "SYNCHRONIZER",
    "RUNTIME",
    "LOGGING",
];

/// The names of the environment's overrides of the sections the soak run
/// sets itself.
pub(super) fn own_overrides() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            OWN_SECTIONS.iter().any(|section| {
                name.strip_prefix("BIGBROTR_")
                    .and_then(|rest| rest.strip_prefix(section))
                    .is_some_and(|rest| rest.starts_with("__"))
            })
        })
        .collect()
}

/// Writes the root folder of the soak run: a copy of the repository's
/// implementation with the synchronizer syncing `relays` from the start of
/// time to now, a cycle every second, its HTTP endpoint on a free port,
/// its log at `info` on standard error, and the egress policy letting it
/// reach the relays on loopback.
pub(super) fn write_root(repo_root: &Path, root: &Path, relays: &[String]) -> anyhow::Result<()> {
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
    }
    let source = repo_root.join("implementations").join(IMPLEMENTATION);
    let target = root.join("implementations").join(IMPLEMENTATION);
    copy_dir(&source, &target)?;
    let config = target.join("config");
    let relays = Value::Sequence(relays.iter().map(|url| Value::from(url.as_str())).collect());
    patch_yaml(
        &config.join("services").join("synchronizer.yaml"),
        &[
            ("service.enabled", Value::from(true)),
            ("loop.interval", Value::from(LOOP_INTERVAL)),
            ("loop.max_iterations", Value::from(0)),
            ("synchronizer.relays", relays),
            ("synchronizer.start_time", Value::from(0)),
            ("synchronizer.end_lag", Value::from(0)),
        ],
    )?;
    patch_yaml(
        &config.join("core").join("runtime.yaml"),
        &[("runtime.http.listen", Value::from(HTTP_LISTEN))],
    )?;
    let egress = config.join("core").join("egress.yaml");
    if egress.is_file() {
        patch_yaml(
            &egress,
            &[(
                "egress.allow",
                Value::Sequence(vec![Value::from(RELAY_NETWORK)]),
            )],
        )?;
    }
    let mut console = Mapping::new();
    for (key, value) in [
        ("type", "console"),
        ("level", "info"),
        ("format", "standard"),
        ("stream", "stderr"),
    ] {
        console.insert(Value::from(key), Value::from(value));
    }
    patch_yaml(
        &config.join("core").join("logging.yaml"),
        &[(
            "logging.outputs",
            Value::Sequence(vec![Value::Mapping(console)]),
        )],
    )
}

/// Copies the folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("copying {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// Sets the keys at the dotted paths of `changes` in the YAML file at
/// `path`, keeping every other key as it is.
fn patch_yaml(path: &Path, changes: &[(&str, Value)]) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut tree: Value =
        serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for (key, value) in changes {
        set_path(&mut tree, key, value.clone())
            .with_context(|| format!("setting `{key}` in {}", path.display()))?;
    }
    let text = serde_norway::to_string(&tree)
        .with_context(|| format!("writing the YAML of {}", path.display()))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Sets the value at a dotted `path` of mappings, creating the missing ones.
fn set_path(tree: &mut Value, path: &str, value: Value) -> anyhow::Result<()> {
    let mut node = tree;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node
            .as_mapping_mut()
            .with_context(|| format!("`{key}` is not under a mapping"))?;
        if keys.peek().is_none() {
            map.insert(Value::from(key), value);
            return Ok(());
        }
        if !map.contains_key(key) {
            map.insert(Value::from(key), Value::Mapping(Mapping::new()));
        }
        node = map
            .get_mut(key)
            .with_context(|| format!("`{key}` vanished"))?;
    }
    Ok(())
}
