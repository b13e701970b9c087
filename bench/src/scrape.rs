//! The synchronizer's counters, read from its `/metrics` (Prometheus text)
//! at the address its log names: the soak run lets it take a free port.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The log line of the runtime's HTTP endpoint, which carries its address.
const SERVING: &str = "serving /health";
/// How long one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The address of the HTTP endpoint, from the log at `path`, once written.
pub(crate) fn http_address(path: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|line| line.contains(SERVING))
        .find_map(|line| {
            let (_, rest) = line.split_once("address=")?;
            let value = rest.split_whitespace().next()?;
            value.trim_matches(|c| c == '"' || c == ',').parse().ok()
        })
}

/// Every sample of one scrape: the metric's name (without labels) and its
/// value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    samples: Vec<(String, f64)>,
}

impl Metrics {
    /// The sum of the samples of `name` over all its labels; 0 when absent
    /// (a counter appears once it is first added to).
    pub(crate) fn total(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(sample, _)| sample == name)
            .map(|(_, value)| value)
            .sum()
    }

    /// Parses the Prometheus text format.
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.trim().rsplit_once(' ')?;
                let name = series.split('{').next()?.trim();
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self { samples }
    }
}

/// Reads `/metrics` at `address`.
pub(crate) async fn scrape(address: SocketAddr) -> anyhow::Result<Metrics> {
    let read = async {
        let mut stream = TcpStream::connect(address).await?;
        // HTTP/1.0: the server closes the connection after its answer.
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(SCRAPE_TIMEOUT, read)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", SCRAPE_TIMEOUT.as_secs()))?
        .with_context(|| format!("reading http://{address}/metrics"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .with_context(|| format!("a malformed answer from http://{address}/metrics"))?;
    anyhow::ensure!(
        head.lines()
            .next()
            .is_some_and(|line| line.contains(" 200")),
        "http://{address}/metrics answered {}",
        head.lines().next().unwrap_or_default()
    );
    Ok(Metrics::parse(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_over_their_labels() {
        let metrics = Metrics::parse(
            "# HELP x_total X.\n# TYPE x_total counter\n\
             x_total{service=\"s\",outcome=\"a\"} 3\nx_total{service=\"s\",outcome=\"b\"} 4\n\
             y 1.5\n",
        );
        assert!((metrics.total("x_total") - 7.0).abs() < f64::EPSILON);
        assert!((metrics.total("y") - 1.5).abs() < f64::EPSILON);
        assert!(metrics.total("z").abs() < f64::EPSILON);
    }
}
