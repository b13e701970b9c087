//! Floods: events listing too many relays, and wildcard DNS domains naming
//! any number of them, are cut and counted, not stored.

use bigbrotr_finder::{Rejection, Source};
use tokio_util::sync::CancellationToken;

use crate::support::{event, finder_config, finder_with, Fixture};

const SOURCE: &str = "wss://source.example";

fn r_tags(urls: &[String]) -> Vec<Vec<&str>> {
    urls.iter().map(|url| vec!["r", url.as_str()]).collect()
}

#[tokio::test]
async fn an_event_gives_at_most_max_urls_and_a_domain_at_most_max_new_relays_a_cycle() {
    let fixture = Fixture::new("bigbrotr").await;
    let source = fixture.relay(SOURCE).await;
    // 80 distinct relays on distinct domains in one relay list.
    let many: Vec<String> = (0..80)
        .map(|i| format!("wss://relay{i}.example{i}"))
        .collect();
    let tags = r_tags(&many);
    let tags: Vec<&[&str]> = tags.iter().map(Vec::as_slice).collect();
    let flood = event(10002, "", &tags, 1_700_000_000);
    // 30 subdomains of one wildcard domain, in two events, and one relay of
    // another domain.
    let wild: Vec<String> = (0..30)
        .map(|i| format!("wss://a{i}.evil.example"))
        .collect();
    let first = r_tags(&wild[..15]);
    let first: Vec<&[&str]> = first.iter().map(Vec::as_slice).collect();
    let mut second = r_tags(&wild[15..]);
    second.push(vec!["r", "wss://good.example"]);
    let second: Vec<&[&str]> = second.iter().map(Vec::as_slice).collect();
    let wild_events = [
        event(10002, "", &first, 1_700_000_001),
        event(10002, "", &second, 1_700_000_002),
    ];
    let seen_at = bigbrotr_utils::now_timestamp() - 100;
    fixture.archive(&[flood], source, seen_at).await;
    fixture.archive(&wild_events, source, seen_at + 1).await;

    let mut config = finder_config();
    config.page_size = 100;
    config.max_urls_per_event = 50;
    config.max_new_relays_per_domain = 20;
    let finder = finder_with(&config);
    let report = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");

    assert_eq!(report.candidates, 80 + 30 + 1);
    assert_eq!(report.by_source.get(&Source::RelayList), Some(&111));
    assert_eq!(report.accepted, 50 + 30 + 1);
    assert_eq!(report.distinct, 81);
    assert_eq!(report.new, 50 + 20 + 1);
    assert_eq!(report.rejected.get(&Rejection::TooManyInEvent), Some(&30));
    assert_eq!(report.rejected.get(&Rejection::TooManyForDomain), Some(&10));
    assert_eq!(report.rejected_total(), 40);

    let relays = fixture.relays().await;
    assert_eq!(relays.len(), 71 + 1);
    let evil = relays
        .iter()
        .filter(|url| url.ends_with(".evil.example"))
        .count();
    assert_eq!(evil, 20);
    assert!(relays.contains(&"wss://good.example".to_owned()));
    // 50 of the flood (the scan does not promise tag order).
    let flooded = many.iter().filter(|url| relays.contains(url)).count();
    assert_eq!(flooded, 50);
}

#[tokio::test]
async fn the_domain_cap_starts_afresh_each_cycle() {
    let fixture = Fixture::new("bigbrotr").await;
    let source = fixture.relay(SOURCE).await;
    let wild: Vec<String> = (0..5).map(|i| format!("wss://b{i}.evil.example")).collect();
    let tags = r_tags(&wild);
    let tags: Vec<&[&str]> = tags.iter().map(Vec::as_slice).collect();
    let seen_at = bigbrotr_utils::now_timestamp() - 100;
    fixture
        .archive(&[event(10002, "", &tags, 1_700_000_000)], source, seen_at)
        .await;
    let mut config = finder_config();
    config.max_new_relays_per_domain = 3;
    let finder = finder_with(&config);
    let report = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.new, 3);
    assert_eq!(report.rejected.get(&Rejection::TooManyForDomain), Some(&2));

    // Seen again in a later event: room again.
    fixture
        .archive(
            &[event(10002, "", &tags, 1_700_000_001)],
            source,
            seen_at + 1,
        )
        .await;
    let report = finder
        .run_cycle(&fixture.brotr, &CancellationToken::new())
        .await
        .expect("a cycle");
    assert_eq!(report.new, 2);
    assert_eq!(report.rejected.get(&Rejection::TooManyForDomain), None);
    assert_eq!(fixture.relays().await.len(), 5 + 1);
}
