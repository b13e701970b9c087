//! HTTP sources: addresses answering with a JSON array of relay URLs,
//! fetched through the egress policy within a time limit and a size cap
//! ([`fetch_http_source`]).

use bigbrotr_utils::http_get as get;
use bigbrotr_utils::{Egress, GetRequest};
use reqwest::Url;
use serde_json::Value;

use crate::config::HttpSource;
use crate::error::{Error, Result};

/// Redirects followed when fetching an HTTP source.
pub const MAX_REDIRECTS: usize = 3;

/// Fetches `source` through `egress` and returns the elements of the JSON
/// array it answers, as they are (the caller checks each one).
///
/// Every hop, redirects included (at most [`MAX_REDIRECTS`], never from
/// `https` to `http`), is resolved once and its addresses checked by the
/// egress policy before anything connects. The whole request must end
/// within `source.timeout` ([`Error::HttpTimeout`]) and the answer must not
/// exceed `max_bytes` ([`Error::HttpTooLarge`]); a status other than 2xx is
/// [`Error::HttpStatus`], an answer that is not a JSON array
/// [`Error::HttpNotAList`], anything else (a refusal of the egress policy
/// included) [`Error::Http`].
pub async fn fetch_http_source(
    egress: &Egress,
    source: &HttpSource,
    max_bytes: usize,
) -> Result<Vec<Value>> {
    let url = source.url.as_str();
    let http = |source| Error::Http {
        url: url.to_owned(),
        source,
    };
    let parsed = Url::parse(url).map_err(|error| {
        http(bigbrotr_utils::Error::InvalidUrl {
            url: url.to_owned(),
            reason: bigbrotr_utils::InvalidUrlReason::Parse(error),
        })
    })?;
    let request = GetRequest {
        user_agent: concat!("bigbrotr-finder/", env!("CARGO_PKG_VERSION")).to_owned(),
        max_redirects: MAX_REDIRECTS,
        max_bytes,
        ..GetRequest::new("application/json", source.timeout)
    };
    let answer = get(egress, &parsed, &request)
        .await
        .map_err(|error| match error {
            bigbrotr_utils::Error::HttpTimeout { after, .. } => Error::HttpTimeout {
                url: url.to_owned(),
                after,
            },
            bigbrotr_utils::Error::TooLarge { limit, .. } => Error::HttpTooLarge {
                url: url.to_owned(),
                limit,
            },
            other => http(other),
        })?;
    if !(200..300).contains(&answer.status) {
        return Err(Error::HttpStatus {
            url: url.to_owned(),
            status: answer.status,
        });
    }
    match serde_json::from_slice::<Value>(&answer.body) {
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
