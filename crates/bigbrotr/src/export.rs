//! `bigbrotr export`: writes archived events as JSON lines, each exactly the
//! signed event, page by page so memory stays flat.

use std::io::Write;

use anyhow::Context as _;
use bigbrotr_brotr::{Brotr, EventCursor, EventFilter};
use nostr::JsonUtil;

/// Events read per page.
const PAGE: u32 = 1000;

/// Parses a time given on the command line: Unix seconds, or an RFC 3339
/// date-time (`2024-01-15T10:30:45Z`) or date (`2024-01-15`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    bigbrotr_utils::rfc3339_to_unix(text).map_err(|error| error.to_string())
}

/// Writes every archived event matching `filter` to `out`, one JSON object a
/// line, oldest first; returns how many.
pub async fn export(
    brotr: &Brotr,
    filter: &EventFilter,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut after: Option<EventCursor> = None;
    let mut written = 0_u64;
    loop {
        let page = brotr
            .select_events(filter, after.as_ref(), PAGE)
            .await
            .context("reading archived events")?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(EventCursor::of(last));
        for event in &page {
            out.write_all(event.as_json().as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .context("writing the output")?;
        }
        written += page.len() as u64;
    }
    out.flush().context("writing the output")?;
    Ok(written)
}
