//! nostr-rs-relay, the relay BigBrotr's archive relay is compared with: its
//! executables, a fresh data folder with a `config.toml` without rate
//! limits, the events loaded with its `bulkloader`, and the relay as a
//! child process.
//!
//! The `bulkloader` of 0.8.12 stores the events but none of their tags: it
//! was written for schema 13 and inserts tag rows without the `kind` and
//! `created_at` that schema 18 requires (`NOT NULL constraint failed`, one
//! log line per event, and the event stays without tags). The tag rows are
//! then written with one statement through the `sqlite3` command, exactly
//! as the relay's own write path (`persist_event`) writes them: one row per
//! tag with a single-letter name and a value, the value as text, with the
//! event's kind and `created_at`. Sending the events as `EVENT` messages
//! instead stores the same rows, at about 2 000 events per second.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::child::Running;

/// The environment variable naming the folder holding both executables.
pub(super) const BIN_VAR: &str = "NOSTR_RS_RELAY_BIN";
/// The version the figures were measured with.
pub(super) const VERSION: &str = "0.8.12";

/// The tag rows the relay's write path stores, from the events' JSON; then
/// the statistics, and the write-ahead log emptied into the database as the
/// bulk loader leaves it (the relay's checkpoint task, finding a large log
/// it cannot truncate under readers, would abort every running query,
/// which then gets no `EOSE`).
const FILL_TAGS: &str = "\
DELETE FROM tag;
INSERT INTO tag (event_id, name, value, kind, created_at)
SELECT e.id, json_extract(t.value, '$[0]'), json_extract(t.value, '$[1]'), e.kind, e.created_at
FROM event AS e, json_each(e.content, '$.tags') AS t
WHERE json_array_length(t.value) >= 2
  AND length(json_extract(t.value, '$[0]')) = 1
  AND json_extract(t.value, '$[0]') GLOB '[a-zA-Z]';
ANALYZE;
PRAGMA wal_checkpoint(TRUNCATE);
SELECT count(*) FROM event;
";

/// How to get it, printed when something is missing.
pub(super) fn install_hint() -> String {
    format!(
        "nostr-rs-relay not found ({BIN_VAR} unset and not on PATH, or no `sqlite3` command on \
         PATH): measuring BigBrotr alone. Install it with `cargo install nostr-rs-relay \
         --version {VERSION} --root <dir>` (it needs protobuf-compiler; without --locked: its \
         locked `time` no longer compiles), set {BIN_VAR}=<dir>/bin, and install sqlite3"
    )
}

/// The executables `nostr-rs-relay` and `bulkloader`, and `sqlite3`.
#[derive(Debug, Clone)]
pub(super) struct NostrRsRelay {
    relay: PathBuf,
    bulkloader: PathBuf,
    sqlite3: PathBuf,
}

impl NostrRsRelay {
    /// Both executables, from the folder `NOSTR_RS_RELAY_BIN` names, else
    /// from the first folder of `PATH` holding `nostr-rs-relay`; and
    /// `sqlite3` from `PATH`.
    pub(super) fn find() -> Option<Self> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let sqlite3 = std::env::split_paths(&path)
            .map(|dir| dir.join("sqlite3"))
            .find(|file| file.is_file())?;
        let in_dir = |dir: &Path| {
            let relay = dir.join("nostr-rs-relay");
            let bulkloader = dir.join("bulkloader");
            (relay.is_file() && bulkloader.is_file()).then(|| Self {
                relay,
                bulkloader,
                sqlite3: sqlite3.clone(),
            })
        };
        if let Some(dir) = std::env::var_os(BIN_VAR) {
            return in_dir(Path::new(&dir));
        }
        std::env::split_paths(&path).find_map(|dir| in_dir(&dir))
    }

    /// Writes a fresh data folder `dir` for a relay on `127.0.0.1:port`.
    pub(super) fn prepare(&self, dir: &Path, port: u16) -> anyhow::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("config.toml");
        std::fs::write(&path, config(dir, port))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Starts the relay on the data folder `dir`; its output goes to
    /// `relay.log` there.
    pub(super) fn start(&self, dir: &Path) -> anyhow::Result<Running> {
        let log = File::create(dir.join("relay.log")).context("creating relay.log")?;
        let child = Command::new(&self.relay)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .arg("--db")
            .arg(dir)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("opening relay.log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.relay.display()))?;
        Ok(Running { child })
    }

    /// Loads the JSON lines of `events` into the database of `dir` (which
    /// the relay created: the bulk loader writes only to a database of
    /// the current schema) with `bulkloader`, and returns the time it took.
    pub(super) fn bulk_load(&self, dir: &Path, events: &Path) -> anyhow::Result<Duration> {
        let input = File::open(events).with_context(|| format!("opening {}", events.display()))?;
        let log = File::create(dir.join("bulkloader.log")).context("creating bulkloader.log")?;
        let started = Instant::now();
        // It reads `config.toml` of the current folder.
        let status = Command::new(&self.bulkloader)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdin(input)
            .stdout(log.try_clone().context("opening bulkloader.log")?)
            .stderr(log)
            .status()
            .with_context(|| format!("running {}", self.bulkloader.display()))?;
        let took = started.elapsed();
        anyhow::ensure!(
            status.success(),
            "bulkloader failed ({status}); see {}",
            dir.join("bulkloader.log").display()
        );
        Ok(took)
    }

    /// Writes the tag rows of every event of the database of `dir` (see the
    /// module's documentation) and runs `ANALYZE`; returns the time it took
    /// and the events the database holds.
    pub(super) fn fill_tags(&self, dir: &Path) -> anyhow::Result<(Duration, u64)> {
        let started = Instant::now();
        let output = Command::new(&self.sqlite3)
            .arg(dir.join("nostr.db"))
            .arg(FILL_TAGS)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.sqlite3.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "sqlite3 failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let took = started.elapsed();
        // The last line: the count (after the checkpoint's `0|0|0`).
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.trim().lines().last().unwrap_or_default();
        let events = last
            .parse()
            .with_context(|| format!("sqlite3 counted `{last}` events"))?;
        Ok((took, events))
    }
}

/// The `config.toml` of a relay on `127.0.0.1:port` with its database in
/// `dir`: no rate limit (`messages_per_sec` and `subscriptions_per_min`
/// unset), messages up to 16 MiB. It has no cap on a filter's `limit`.
fn config(dir: &Path, port: u16) -> String {
    format!(
        r#"[info]
relay_url = "ws://127.0.0.1:{port}/"
name = "bigbrotr-bench"

[database]
data_directory = "{dir}"

[network]
address = "127.0.0.1"
port = {port}

[limits]
max_event_bytes = 16777216
max_ws_message_bytes = 16777216
max_ws_frame_bytes = 16777216
"#,
        dir = dir.display()
    )
}
