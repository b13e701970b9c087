//! Running the `bigbrotr` command as a child process: its wall time and its
//! peak resident memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How often the child's memory is sampled. The kernel keeps the peak
/// (`VmHWM`) itself, so sampling only has to happen before the child exits.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// The `bigbrotr` command of one implementation, on one database.
#[derive(Debug, Clone)]
pub(crate) struct Bigbrotr {
    /// The executable.
    pub(crate) binary: PathBuf,
    /// The folder holding `implementations/`.
    pub(crate) root: PathBuf,
    /// The implementation's name.
    pub(crate) implementation: String,
    /// Where the output of each run is kept.
    pub(crate) log_dir: PathBuf,
}

/// What one run took.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// From start to exit.
    pub(crate) elapsed: Duration,
    /// Peak resident set size in bytes (`VmHWM`), when it could be read.
    pub(crate) peak_rss: Option<u64>,
    /// What it printed on standard output.
    pub(crate) stdout: String,
}

impl Bigbrotr {
    /// Runs `bigbrotr <args>` on `database` to its end; a failure is an
    /// error holding what it printed. `label` names the output files.
    pub(crate) fn run(&self, label: &str, database: &str, args: &[&str]) -> anyhow::Result<Run> {
        let out_path = self.log_dir.join(format!("{label}.stdout"));
        let err_path = self.log_dir.join(format!("{label}.stderr"));
        let create = |path: &Path| {
            File::create(path).with_context(|| format!("creating {}", path.display()))
        };
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--implementation")
            .arg(&self.implementation)
            .args(args)
            // The implementation's pool.yaml names the database `${DB_NAME}`;
            // a section override would win over it.
            .env("DB_NAME", database)
            .env_remove("BIGBROTR_DATABASE__DATABASE")
            .stdin(std::process::Stdio::null())
            .stdout(create(&out_path)?)
            .stderr(create(&err_path)?);
        let start = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
        let mut peak_kib = None;
        let status = loop {
            if let Some(status) = child.try_wait().context("waiting for bigbrotr")? {
                break status;
            }
            // Gone once the child has exited; the last sample stands.
            if let Some(kib) = read_peak_kib(&status_file) {
                peak_kib = Some(kib);
            }
            std::thread::sleep(SAMPLE_EVERY);
        };
        let elapsed = start.elapsed();
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        if !status.success() {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            anyhow::bail!(
                "`bigbrotr {}` failed ({status}): {}",
                args.join(" "),
                stderr.trim()
            );
        }
        Ok(Run {
            elapsed,
            peak_rss: peak_kib.map(|kib| kib * 1024),
            stdout,
        })
    }
}

/// `VmHWM` of a `/proc/<pid>/status` file, in KiB.
fn read_peak_kib(status_file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status_file).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
