//! The NIP-11 check: the relay information document, over HTTP(S).

use std::time::Duration;

use bigbrotr_brotr::Network;
use bigbrotr_utils::{Egress, GetRequest};
use nostr::nips::nip11::RelayInformationDocument;
use reqwest::header::{ACCEPT, USER_AGENT};
use reqwest::{redirect, Client, Proxy};
use serde_json::Value;

use crate::error::{Error, Result};

/// The media type NIP-11 asks clients to send in `Accept`.
pub const NIP11_MEDIA_TYPE: &str = "application/nostr+json";

/// What the NIP-11 check obtained.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Nip11Fetch {
    /// The document as received, when the relay served a JSON object.
    pub document: Option<Value>,
    /// The document read as NIP-11 describes it, when it conforms.
    pub info: Option<RelayInformationDocument>,
    /// Why no document, or no conforming one, was obtained.
    pub error: Option<String>,
}

/// Fetches NIP-11 documents: clearnet ones through the egress policy
/// (every redirect hop resolved once and checked before connecting, never
/// from `https` to `http`), `.onion` ones through the SOCKS5 proxy.
#[derive(Debug, Clone)]
pub(crate) struct Nip11Client {
    egress: Egress,
    tor: Option<Client>,
    timeout: Duration,
    max_redirects: usize,
    max_bytes: usize,
}

impl Nip11Client {
    /// A client following at most `max_redirects` redirects, each request
    /// bounded by `timeout`, connecting through `egress`; `.onion`
    /// documents go through `socks5` when given.
    pub(crate) fn new(
        timeout: Duration,
        max_redirects: usize,
        max_bytes: usize,
        socks5: Option<(&str, u16)>,
        egress: Egress,
    ) -> Result<Self> {
        let builder = || {
            Client::builder()
                .redirect(redirect::Policy::custom(move |attempt| {
                    let downgrade = attempt.url().scheme() == "http"
                        && attempt
                            .previous()
                            .last()
                            .is_some_and(|previous| previous.scheme() == "https");
                    if downgrade {
                        attempt.error("a redirect from https to http")
                    } else if attempt.previous().len() > max_redirects {
                        attempt.error("too many redirects")
                    } else {
                        attempt.follow()
                    }
                }))
                .timeout(timeout)
                .connect_timeout(timeout)
        };
        let tor = socks5
            .map(|(host, port)| {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                // socks5h: the proxy resolves the name, as `.onion` needs.
                Proxy::all(format!("socks5h://{host}:{port}"))
                    .and_then(|proxy| builder().proxy(proxy).build())
                    .map_err(|source| Error::HttpClient {
                        what: "tor",
                        source,
                    })
            })
            .transpose()?;
        Ok(Self {
            egress,
            tor,
            timeout,
            max_redirects,
            max_bytes,
        })
    }

    /// The same client, clearnet documents fetched through `egress`.
    pub(crate) fn with_egress(self, egress: Egress) -> Self {
        Self { egress, ..self }
    }

    /// The NIP-11 document of the relay at `url` (a `ws`/`wss` URL).
    pub(crate) async fn fetch(&self, url: &str, network: Network) -> Nip11Fetch {
        let client = match network {
            Network::Clearnet => return self.fetch_clearnet(url).await,
            Network::Tor => match &self.tor {
                Some(client) => client,
                None => return failed("no SOCKS5 proxy is configured for .onion relays"),
            },
        };
        let body = match tokio::time::timeout(self.timeout, self.body(client, url)).await {
            Ok(Ok(body)) => body,
            Ok(Err(reason)) => return failed(reason),
            Err(_elapsed) => return failed(timed_out(self.timeout)),
        };
        parse_document(&body)
    }

    /// The document of a clearnet relay, through the egress policy: an
    /// address the policy denies, at any hop, is never connected to and
    /// gives no document.
    async fn fetch_clearnet(&self, url: &str) -> Nip11Fetch {
        let http_url = match bigbrotr_utils::nip11_http_url(url) {
            Ok(http_url) => http_url,
            Err(error) => return failed(error.to_string()),
        };
        let request = GetRequest {
            user_agent: concat!("bigbrotr-monitor/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_redirects: self.max_redirects,
            max_bytes: self.max_bytes,
            ..GetRequest::new(NIP11_MEDIA_TYPE, self.timeout)
        };
        match bigbrotr_utils::http_get(&self.egress, &http_url, &request).await {
            Ok(answer) if (200..300).contains(&answer.status) => parse_document(&answer.body),
            Ok(answer) => failed(format!("HTTP status {}", answer.status)),
            Err(bigbrotr_utils::Error::HttpTimeout { .. }) => failed(timed_out(self.timeout)),
            Err(bigbrotr_utils::Error::TooLarge { limit, .. }) => {
                failed(format!("the document is larger than {limit} bytes"))
            }
            Err(error) => failed(error_chain(&error)),
        }
    }

    /// The body of the answer to the NIP-11 request, at most `max_bytes`.
    async fn body(&self, client: &Client, url: &str) -> Result<Vec<u8>, String> {
        let http_url = bigbrotr_utils::nip11_http_url(url).map_err(|e| e.to_string())?;
        let mut response = client
            .get(http_url)
            .header(ACCEPT, NIP11_MEDIA_TYPE)
            .header(
                USER_AGENT,
                concat!("bigbrotr-monitor/", env!("CARGO_PKG_VERSION")),
            )
            .send()
            .await
            .map_err(|e| request_error(&e, self.timeout))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {}", status.as_u16()));
        }
        let too_large = || format!("the document is larger than {} bytes", self.max_bytes);
        if response
            .content_length()
            .is_some_and(|length| length > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| request_error(&e, self.timeout))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A fetch that obtained nothing, for `reason`.
fn failed(reason: impl Into<String>) -> Nip11Fetch {
    Nip11Fetch {
        error: Some(reason.into()),
        ..Nip11Fetch::default()
    }
}

/// The reason given when the document did not come within `timeout`.
fn timed_out(timeout: Duration) -> String {
    format!("no document within {} ms", timeout.as_millis())
}

/// A request error with its causes, which say what actually happened
/// (refused, TLS, DNS).
fn request_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return timed_out(timeout);
    }
    if error.is_redirect() {
        return "redirect not followed (too many, or from https to http)".to_owned();
    }
    error_chain(error)
}

/// An error with its causes, which say what actually happened.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads a NIP-11 body: a JSON object is kept as received (unknown fields
/// included) and also read as a [`RelayInformationDocument`]; anything else
/// is refused with the reason.
pub(crate) fn parse_document(body: &[u8]) -> Nip11Fetch {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => return failed(format!("not JSON: {error}")),
    };
    if !value.is_object() {
        return failed("not a JSON object");
    }
    match serde_json::from_value::<RelayInformationDocument>(value.clone()) {
        Ok(info) => Nip11Fetch {
            document: Some(value),
            info: Some(info),
            error: None,
        },
        Err(error) => Nip11Fetch {
            document: Some(value),
            info: None,
            error: Some(format!("not a valid NIP-11 document: {error}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_object_is_kept_whole_with_its_unknown_fields() {
        let fetch = parse_document(
            br#"{"name":"r","supported_nips":[1,11],"x-custom":{"a":1},"limitation":{"min_pow_difficulty":8}}"#,
        );
        assert_eq!(
            fetch.document,
            Some(
                json!({"name":"r","supported_nips":[1,11],"x-custom":{"a":1},"limitation":{"min_pow_difficulty":8}})
            )
        );
        let info = fetch.info.expect("conforming");
        assert_eq!(info.supported_nips, Some(vec![1, 11]));
        assert_eq!(info.limitation.and_then(|l| l.min_pow_difficulty), Some(8));
        assert_eq!(fetch.error, None);
    }

    #[test]
    fn a_body_that_is_not_a_json_object_gives_no_document_and_a_reason() {
        let fetch = parse_document(b"<html>hello</html>");
        assert_eq!(fetch.document, None);
        assert!(fetch.error.unwrap().starts_with("not JSON: "));
        let fetch = parse_document(b"[1, 2]");
        assert_eq!(fetch.document, None);
        assert_eq!(fetch.error.as_deref(), Some("not a JSON object"));
    }

    #[test]
    fn a_non_conforming_object_is_kept_with_the_reason() {
        let fetch = parse_document(br#"{"supported_nips":"all"}"#);
        assert_eq!(fetch.document, Some(json!({"supported_nips": "all"})));
        assert!(fetch.info.is_none());
        assert!(fetch
            .error
            .unwrap()
            .starts_with("not a valid NIP-11 document: "));
    }
}
