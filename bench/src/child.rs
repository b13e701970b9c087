//! Running the `bigbrotr` command as a child process: its wall time and its
//! resident memory; a long-running child stopped with `SIGTERM` (killed when
//! it does not exit).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
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
    /// Environment variables the command does not inherit.
    pub(crate) env_remove: Vec<String>,
    /// Environment variables set for the command (after `env_remove`).
    pub(crate) env: Vec<(String, String)>,
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
        let (out_path, err_path) = self.output_paths(label);
        let start = Instant::now();
        let mut child = self.spawn(label, database, args)?;
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

    /// Where the standard output and error of the run named `label` go.
    pub(crate) fn output_paths(&self, label: &str) -> (PathBuf, PathBuf) {
        (
            self.log_dir.join(format!("{label}.stdout")),
            self.log_dir.join(format!("{label}.stderr")),
        )
    }

    /// Starts `bigbrotr <args>` on `database` and returns at once; its
    /// output goes to the files [`output_paths`](Self::output_paths) names.
    pub(crate) fn spawn(
        &self,
        label: &str,
        database: &str,
        args: &[&str],
    ) -> anyhow::Result<Child> {
        let (out_path, err_path) = self.output_paths(label);
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
            .env_remove("BIGBROTR_DATABASE__DATABASE");
        for name in &self.env_remove {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
        command
            .stdin(std::process::Stdio::null())
            .stdout(create(&out_path)?)
            .stderr(create(&err_path)?);
        command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))
    }
}

/// `VmHWM` of a `/proc/<pid>/status` file, in KiB.
fn read_peak_kib(status_file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status_file).ok()?;
    status_field_kib(&text, "VmHWM:")
}

/// The resident memory of a running process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// Resident set size now (`VmRSS`), in bytes.
    pub(crate) rss: u64,
    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub(crate) peak: u64,
}

/// The resident memory of process `pid`; `None` once it has exited or where
/// `/proc` cannot be read.
pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Memory {
        rss: status_field_kib(&text, "VmRSS:")? * 1024,
        peak: status_field_kib(&text, "VmHWM:")? * 1024,
    })
}

/// The field `name` (with its colon) of the text of a `/proc/<pid>/status`
/// file, in KiB.
fn status_field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A long-running child process; killed when dropped while still running
/// (after an error of the benchmark itself).
pub(crate) struct Running {
    pub(crate) child: Child,
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How a child ended.
#[derive(Debug)]
pub(crate) struct Stop {
    pub(crate) status: ExitStatus,
    /// It exited before the benchmark stopped it.
    pub(crate) early: bool,
    /// From `SIGTERM` to its exit.
    pub(crate) took: Duration,
    /// It did not exit within the wait and was killed.
    pub(crate) killed: bool,
}

/// Stops the child with `SIGTERM` (unless it has exited already, with
/// `early_exit`) and waits for it, killing it after `wait`.
pub(crate) async fn stop(
    running: &mut Running,
    early_exit: Option<ExitStatus>,
    wait: Duration,
) -> anyhow::Result<Stop> {
    if let Some(status) = early_exit {
        return Ok(Stop {
            status,
            early: true,
            took: Duration::ZERO,
            killed: false,
        });
    }
    let pid = running.pid().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .context("running `kill -TERM`")?;
    anyhow::ensure!(sent.success(), "`kill -TERM {pid}` failed ({sent})");
    let asked = Instant::now();
    loop {
        if let Some(status) = running.child.try_wait().context("waiting for a child")? {
            return Ok(Stop {
                status,
                early: false,
                took: asked.elapsed(),
                killed: false,
            });
        }
        if asked.elapsed() >= wait {
            running.child.kill().context("killing a child")?;
            let status = running.child.wait().context("waiting for a child")?;
            return Ok(Stop {
                status,
                early: false,
                took: asked.elapsed(),
                killed: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
