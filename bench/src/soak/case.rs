//! The cases of the soak run: how the relays behave, what ends a run, and
//! what each case measured.

use std::time::Duration;

use anyhow::Context as _;
use nostr::Timestamp;

use super::relay::Behaviour;
use crate::scrape::Metrics;

/// The most events a capped relay returns to one `REQ`.
const CAP: usize = 100;

/// How the relays of a run behave, and what ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    /// Every `REQ` answered up to its `limit`; no NIP-77.
    Honest,
    /// At most [`CAP`] events per `REQ`, unannounced; no NIP-77.
    Capped,
    /// NIP-77 relays.
    Nip77,
    /// The NIP-77 relays again, on the archive of [`Case::Nip77`] with
    /// every cursor reset: everything is walked again and nothing must be
    /// downloaded.
    Nip77Again,
    /// Hostile relays (no NIP-77): [`GIANTS`](super::fixtures::GIANTS)
    /// events over the size limits each, and garbage or a forged copy
    /// before every third event. Run only when asked for.
    Hostile,
}

impl Case {
    /// The cases of `all`.
    const ALL: [Self; 4] = [Self::Honest, Self::Capped, Self::Nip77, Self::Nip77Again];
    /// Every case, in the order they run.
    const KNOWN: [Self; 5] = [
        Self::Honest,
        Self::Capped,
        Self::Nip77,
        Self::Nip77Again,
        Self::Hostile,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Capped => "capped",
            Self::Nip77 => "nip77",
            Self::Nip77Again => "nip77-again",
            Self::Hostile => "hostile",
        }
    }

    pub(super) fn behaviour(self) -> Behaviour {
        match self {
            Self::Honest => Behaviour::Honest,
            Self::Capped => Behaviour::Capped(CAP),
            Self::Nip77 | Self::Nip77Again => Behaviour::Nip77,
            Self::Hostile => Behaviour::Hostile,
        }
    }

    /// The cases `value` of `BENCH_SOAK_CASE` names (empty: `all`), in the
    /// order they run; `nip77-again` brings `nip77` along, whose archive it
    /// needs.
    pub(super) fn list(value: &str) -> anyhow::Result<Vec<Self>> {
        let mut cases = Vec::new();
        for name in value.split(',').map(str::trim) {
            match name {
                "" | "all" => cases.extend(Self::ALL),
                "nip77-again" => cases.extend([Self::Nip77, Self::Nip77Again]),
                _ => cases.push(
                    Self::KNOWN
                        .into_iter()
                        .find(|case| case.name() == name)
                        .with_context(|| {
                            format!(
                                "BENCH_SOAK_CASE: unknown case `{name}` \
                                 (honest, capped, nip77, nip77-again, hostile or all)"
                            )
                        })?,
                ),
            }
        }
        Ok(Self::KNOWN
            .into_iter()
            .filter(|case| cases.contains(case))
            .collect())
    }
}

/// What ends a run, besides its time limit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Goal {
    /// Every event and sighting archived.
    Archived,
    /// Every relay's cursor past `newest`: all walked again.
    Walked { newest: Timestamp, relays: usize },
}

/// What one case measured, for the summary.
#[derive(Debug)]
pub(super) struct CaseResult {
    pub(super) case: Case,
    /// Events the run covered: all of them.
    pub(super) events: u64,
    /// Relays of the run.
    pub(super) relays: usize,
    /// Rows of `quarantine` at the end.
    pub(super) quarantined: Option<u64>,
    /// From the synchronizer's start to the sample that saw the goal
    /// reached; `None` when it was not.
    pub(super) took: Option<Duration>,
    /// The counters once the cycle that reached the goal ended.
    pub(super) metrics: Option<Metrics>,
    /// Its peak RSS (`VmHWM`).
    pub(super) peak: Option<u64>,
    /// The archive matched the relays, and the exit was clean.
    pub(super) passed: bool,
}
