//! CPU time spent by each party of a measurement, read from `/proc` (Linux):
//! this process and the children it waited for (the client), the
//! `postgres` processes and the `pgbouncer` processes of the machine.
//!
//! Wall-clock rates depend on what else the machine is doing; CPU time per
//! event hardly does, and tells where the time goes. Processes that end
//! during a measurement take their CPU time with them, so measure while the
//! connections are open.

use std::time::Duration;

/// Clock ticks per second of the `/proc` counters (`USER_HZ`, 100 on every
/// mainstream Linux architecture).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far, by party.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuSnapshot {
    client: u64,
    postgres: u64,
    pgbouncer: u64,
}

/// CPU time used between two snapshots, by party.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuUse {
    pub(crate) client: Duration,
    pub(crate) postgres: Duration,
    pub(crate) pgbouncer: Duration,
}

impl CpuUse {
    pub(crate) fn total(&self) -> Duration {
        self.client + self.postgres + self.pgbouncer
    }
}

impl CpuSnapshot {
    /// The counters now; `None` where `/proc` cannot be read.
    pub(crate) fn take() -> Option<Self> {
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // utime, stime, cutime, cstime: fields 14 to 17.
        let client = fields_after_comm(&own).and_then(|fields| {
            Some(
                fields
                    .get(11..15)?
                    .iter()
                    .filter_map(|f| f.parse::<u64>().ok())
                    .sum(),
            )
        })?;
        let mut snapshot = Self {
            client,
            ..Self::default()
        };
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let comm = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map_or("", |(comm, _)| comm);
            let slot = match comm {
                "postgres" => &mut snapshot.postgres,
                "pgbouncer" => &mut snapshot.pgbouncer,
                _ => continue,
            };
            if let Some(fields) = fields_after_comm(&stat) {
                // utime and stime: fields 14 and 15.
                *slot += fields
                    .get(11..13)
                    .map_or(0, |f| f.iter().filter_map(|f| f.parse::<u64>().ok()).sum());
            }
        }
        Some(snapshot)
    }

    /// What was used from `self` to `later`.
    pub(crate) fn until(&self, later: &Self) -> CpuUse {
        let ticks = |before: u64, after: u64| {
            Duration::from_millis(after.saturating_sub(before) * 1000 / TICKS_PER_SECOND)
        };
        CpuUse {
            client: ticks(self.client, later.client),
            postgres: ticks(self.postgres, later.postgres),
            pgbouncer: ticks(self.pgbouncer, later.pgbouncer),
        }
    }
}

/// CPU time (user and system) used so far by process `pid` itself; `None`
/// once it has exited or where `/proc` cannot be read.
pub(crate) fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // utime and stime: fields 14 and 15.
    let ticks: u64 = fields_after_comm(&stat)?
        .get(11..13)?
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// The fields of a `/proc/<pid>/stat` line after `(comm)`: the state is the
/// first (field 3).
fn fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}
