//! Seed files: one relay URL per line, read into a [`SeedList`], and stored
//! in batches by [`seed_relays`].

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use bigbrotr_brotr::{validate_relay_url, Brotr};
use bigbrotr_logging::ErrorChain;
use tokio_util::sync::CancellationToken;

/// Tracing target of the initializer's events.
pub(crate) const TARGET: &str = "bigbrotr::initializer";

/// What a seed file holds: the valid relays, normalised, each once, and
/// the lines that were not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedList {
    /// Normalised URLs in the order of their first line, with that line
    /// (counted from 1).
    pub relays: Vec<(usize, String)>,
    /// Lines naming a relay already listed (after normalisation): the line
    /// and the line of its first mention.
    pub duplicates: Vec<(usize, usize)>,
    /// Lines that are not a valid relay URL.
    pub invalid: Vec<InvalidLine>,
}

/// A line of a seed file that is not a valid relay URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// Its number, counted from 1.
    pub line: usize,
    /// Its text, without the comment and surrounding whitespace.
    pub text: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for InvalidLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: `{}`: {}", self.line, self.text, self.reason)
    }
}

/// Reads a seed file: blank lines and lines starting with `#` are skipped,
/// and a `#` after whitespace starts a comment (a `#` inside a URL, with no
/// space before it, is part of the URL). Every other line must be a relay
/// URL; see [`validate_relay_url`] for its normal form.
#[must_use]
pub fn parse_seed_list(text: &str) -> SeedList {
    let mut list = SeedList::default();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let entry = strip_comment(raw).trim();
        if entry.is_empty() {
            continue;
        }
        match validate_relay_url(entry) {
            Ok(url) => match first_line.get(url.as_str()) {
                Some(&first) => list.duplicates.push((line, first)),
                None => {
                    first_line.insert(url.as_str().to_owned(), line);
                    list.relays.push((line, url.as_str().to_owned()));
                }
            },
            Err(error) => list.invalid.push(InvalidLine {
                line,
                text: entry.to_owned(),
                reason: ErrorChain::new(&error).to_string(),
            }),
        }
    }
    list
}

/// `line` without its comment: from a `#` that starts the line (after
/// whitespace) or follows whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

/// What [`seed_relays`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Valid relays in the file, each counted once.
    pub valid: usize,
    /// Of those, relays sent to the archive (new or already known); fewer
    /// than `valid` only when the run was stopped between two batches.
    pub stored: usize,
    /// Lines repeating a relay already listed.
    pub duplicates: usize,
    /// Lines that are not a valid relay URL, with their reason.
    pub invalid: Vec<InvalidLine>,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} valid relays, {} stored, {} duplicate lines, {} invalid lines",
            self.valid,
            self.stored,
            self.duplicates,
            self.invalid.len()
        )
    }
}

/// Reads the seed file at `path` and records its valid relays through
/// `brotr`, `batch_size` per call (each call one transaction per
/// `brotr.batch_size` chunk). Invalid lines are logged with their line
/// number and reason and never stop the seeding. When `cancel` fires, no
/// new batch starts. Relays already known are left as they are, so seeding
/// again stores nothing new.
pub async fn seed_relays(
    brotr: &Brotr,
    path: &Path,
    batch_size: usize,
    cancel: &CancellationToken,
) -> anyhow::Result<SeedReport> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("reading the seed file {}", path.display()))?;
    let list = parse_seed_list(&text);
    for invalid in &list.invalid {
        tracing::warn!(
            target: TARGET,
            file = %path.display(),
            line = invalid.line,
            text = %invalid.text,
            reason = %invalid.reason,
            "skipped an invalid line of the seed file"
        );
    }
    let mut report = SeedReport {
        valid: list.relays.len(),
        stored: 0,
        duplicates: list.duplicates.len(),
        invalid: list.invalid,
    };
    let urls: Vec<&str> = list.relays.iter().map(|(_, url)| url.as_str()).collect();
    let inserted_at = bigbrotr_utils::now_timestamp();
    for batch in urls.chunks(batch_size.max(1)) {
        if cancel.is_cancelled() {
            tracing::info!(
                target: TARGET,
                stored = report.stored,
                left = report.valid - report.stored,
                "seeding stopped before its end"
            );
            break;
        }
        brotr
            .insert_relay_batch(batch, inserted_at)
            .await
            .with_context(|| {
                format!(
                    "storing relays {} to {} of the seed file",
                    report.stored + 1,
                    report.stored + batch.len()
                )
            })?;
        report.stored += batch.len();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_duplicates_and_invalid_lines_are_told_apart() {
        let text = "# header\n\
                    \n\
                    wss://relay.damus.io\n\
                    WSS://Relay.Damus.IO:443/   # the same, written otherwise\n\
                    https://not.a.relay\n\
                    \t  # an indented comment\n\
                    wss://relay.example.com/path#frag\n\
                    ws://\n\
                    wss://relay.example.com/path\n";
        let list = parse_seed_list(text);
        assert_eq!(
            list.relays,
            [
                (3, "wss://relay.damus.io".to_owned()),
                (7, "wss://relay.example.com/path".to_owned()),
            ]
        );
        assert_eq!(list.duplicates, [(4, 3), (9, 7)]);
        let invalid: Vec<(usize, &str)> = list
            .invalid
            .iter()
            .map(|line| (line.line, line.text.as_str()))
            .collect();
        assert_eq!(invalid, [(5, "https://not.a.relay"), (8, "ws://")]);
        assert!(
            list.invalid[0]
                .reason
                .starts_with("it is not a ws:// or wss:// URL"),
            "{}",
            list.invalid[0].reason
        );
    }

    #[test]
    fn a_comment_needs_whitespace_before_its_hash() {
        assert_eq!(strip_comment("wss://a#b"), "wss://a#b");
        assert_eq!(strip_comment("wss://a #b"), "wss://a ");
        assert_eq!(strip_comment("#all"), "");
        assert_eq!(strip_comment("  # all"), "  ");
    }
}
