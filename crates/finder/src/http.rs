//! HTTP sources: addresses answering with a JSON array of relay URLs,
//! fetched within a time limit and a size cap ([`fetch_http_source`]).

use serde_json::Value;

use crate::config::HttpSource;
use crate::error::{Error, Result};

/// Redirects followed when fetching an HTTP source.
pub const MAX_REDIRECTS: usize = 3;

/// The HTTP client of the finder: rustls, [`MAX_REDIRECTS`] redirects, no
/// time limit of its own (each request has its source's).
pub(crate) fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("bigbrotr-finder/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| Error::HttpClient { source })
}

/// Fetches `source` with `client` and returns the elements of the JSON array
/// it answers, as they are (the caller checks each one). The whole request
/// must end within `source.timeout` ([`Error::HttpTimeout`]) and the answer
/// must not exceed `max_bytes` ([`Error::HttpTooLarge`]); a status other
/// than 2xx is [`Error::HttpStatus`], an answer that is not a JSON array
/// [`Error::HttpNotAList`].
pub async fn fetch_http_source(
    client: &reqwest::Client,
    source: &HttpSource,
    max_bytes: usize,
) -> Result<Vec<Value>> {
    let url = source.url.as_str();
    let body = tokio::time::timeout(source.timeout, fetch_body(client, url, max_bytes))
        .await
        .map_err(|_| Error::HttpTimeout {
            url: url.to_owned(),
            after: source.timeout,
        })??;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Err(Error::HttpNotAList {
            url: url.to_owned(),
            source: None,
        }),
        Err(error) => Err(Error::HttpNotAList {
            url: url.to_owned(),
            source: Some(error),
        }),
    }
}

/// The body of a `GET url`, at most `max_bytes`.
async fn fetch_body(client: &reqwest::Client, url: &str, max_bytes: usize) -> Result<Vec<u8>> {
    let http = |source| Error::Http {
        url: url.to_owned(),
        source,
    };
    let too_large = || Error::HttpTooLarge {
        url: url.to_owned(),
        limit: max_bytes,
    };
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::HttpStatus {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
