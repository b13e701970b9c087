//! The shipped configuration files.

use std::time::Duration;

use bigbrotr_config::{Env, Implementation};
use bigbrotr_refresher::RefresherFile;
use bigbrotr_test_support::workspace_root;

#[test]
fn every_implementation_ships_a_refresher_file_refreshing_every_view_hourly() {
    for name in ["bigbrotr", "lilbrotr"] {
        let implementation = Implementation::open(&workspace_root(), name).expect("found");
        let file: RefresherFile = implementation
            .load("services", "refresher", &Env::empty())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = RefresherFile::default();
        expected.looping.interval = Duration::from_secs(3600);
        expected.looping.error_retry_delay = Duration::from_secs(60);
        assert_eq!(file, expected, "{name}");
    }
}
