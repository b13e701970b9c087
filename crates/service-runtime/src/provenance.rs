//! The provenance endpoints of the HTTP server: `/events/<id>/relays`, the
//! relays an event was seen on, and `/relays/<url>`, a relay with its latest
//! check; each answer is JSON, read from the archive.

use bigbrotr_brotr::{Brotr, Sighting};
use bigbrotr_logging::ErrorChain;
use hyper::StatusCode;
use nostr_sdk::EventId;
use serde::Serialize;

use crate::service::TARGET;

/// A request for one of the provenance endpoints, as its path gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query<'a> {
    /// `/events/<id>/relays`: the id as written.
    EventRelays(&'a str),
    /// `/relays/<url>`: the URL as written, percent-encoded or not.
    Relay(&'a str),
}

impl<'a> Query<'a> {
    /// The query of `path`, when it is a provenance path.
    pub(crate) fn of_path(path: &'a str) -> Option<Self> {
        if let Some(id) = path
            .strip_prefix("/events/")
            .and_then(|rest| rest.strip_suffix("/relays"))
        {
            return Some(Self::EventRelays(id));
        }
        path.strip_prefix("/relays/").map(Self::Relay)
    }
}

/// The body of `/events/<id>/relays`.
#[derive(Debug, Serialize)]
struct EventRelays {
    id: String,
    relays: Vec<Sighting>,
}

/// The body of every answer other than `200`.
#[derive(Debug, Serialize)]
struct Problem {
    error: String,
}

/// What the archive answered: a body to send with `200`, or why not.
enum Reply {
    /// The JSON body of a `200`.
    Found(Vec<u8>),
    /// Another status, and the error message sent with it.
    Refused(StatusCode, String),
}

/// The status and JSON body answering `query` from `brotr`. Each query is
/// bounded by the pool's `command_timeout`; an error of the archive is a
/// `503`, logged.
pub(crate) async fn answer(brotr: &Brotr, query: Query<'_>) -> (StatusCode, Vec<u8>) {
    let reply = match query {
        Query::EventRelays(id) => event_relays(brotr, id).await,
        Query::Relay(url) => relay(brotr, url).await,
    };
    match reply {
        Ok(Reply::Found(body)) => (StatusCode::OK, body),
        Ok(Reply::Refused(status, error)) => (status, json(&Problem { error })),
        Err(error) => {
            tracing::warn!(
                target: TARGET,
                ?query,
                error.chain = %ErrorChain::new(&error),
                "the archive could not answer a provenance request"
            );
            let error = "the archive could not answer; try again later".to_owned();
            (StatusCode::SERVICE_UNAVAILABLE, json(&Problem { error }))
        }
    }
}

async fn event_relays(brotr: &Brotr, id: &str) -> bigbrotr_brotr::Result<Reply> {
    let Ok(id) = EventId::from_hex(id) else {
        return Ok(Reply::Refused(
            StatusCode::BAD_REQUEST,
            "an event id is 64 hexadecimal digits".to_owned(),
        ));
    };
    // Not paged: an event is seen on at most a few thousand relays.
    let relays = brotr.event_relays(&id).await?;
    // No sighting: not archived, or archived and every relay it was seen on
    // deleted since.
    if relays.is_empty() && !brotr.event_exists(&id).await? {
        return Ok(Reply::Refused(
            StatusCode::NOT_FOUND,
            format!("event {} is not archived", id.to_hex()),
        ));
    }
    Ok(Reply::Found(json(&EventRelays {
        id: id.to_hex(),
        relays,
    })))
}

async fn relay(brotr: &Brotr, url: &str) -> bigbrotr_brotr::Result<Reply> {
    let Some(url) = percent_decode(url) else {
        return Ok(Reply::Refused(
            StatusCode::BAD_REQUEST,
            "the relay URL is not validly percent-encoded UTF-8".to_owned(),
        ));
    };
    if url.trim().is_empty() {
        return Ok(Reply::Refused(
            StatusCode::BAD_REQUEST,
            "no relay URL: ask for /relays/<url>".to_owned(),
        ));
    }
    Ok(match brotr.relay_report(&url).await? {
        Some(report) => Reply::Found(json(&report)),
        None => Reply::Refused(
            StatusCode::NOT_FOUND,
            format!("no relay is recorded under {url}"),
        ),
    })
}

/// `value` as JSON. What is written here has string keys only, which
/// cannot fail; `{}` if it ever did.
fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// `text` with each `%XX` replaced by the byte it stands for; `None` when a
/// `%` is not followed by two hexadecimal digits or the bytes are not
/// UTF-8. Text without `%`, such as a URL written plainly, is kept as it is.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = hex_digit(*bytes.get(index + 1)?)?;
            let low = hex_digit(*bytes.get(index + 2)?)?;
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(byte);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_paths_are_recognised_and_others_are_not() {
        assert_eq!(
            Query::of_path("/events/abc/relays"),
            Some(Query::EventRelays("abc"))
        );
        assert_eq!(
            Query::of_path("/relays/wss://relay.example.com/"),
            Some(Query::Relay("wss://relay.example.com/"))
        );
        assert_eq!(Query::of_path("/relays/"), Some(Query::Relay("")));
        for path in ["/events/abc", "/events/abc/relays/", "/relays", "/status"] {
            assert_eq!(Query::of_path(path), None, "{path}");
        }
    }

    #[test]
    fn percent_escapes_are_decoded_in_either_case_and_plain_text_is_kept() {
        assert_eq!(
            percent_decode("wss%3A%2F%2Frelay.example.com%2fnostr").as_deref(),
            Some("wss://relay.example.com/nostr")
        );
        assert_eq!(
            percent_decode("wss://relay.example.com/").as_deref(),
            Some("wss://relay.example.com/")
        );
        assert_eq!(
            percent_decode("wss://b%C3%BCcher.example").as_deref(),
            Some("wss://bücher.example")
        );
    }

    #[test]
    fn a_broken_escape_or_bytes_that_are_not_utf8_do_not_decode() {
        for text in ["wss%3", "wss%", "wss%zz", "wss%+1", "wss%FF"] {
            assert_eq!(percent_decode(text), None, "{text}");
        }
    }
}
