//! The shipped configuration files.

use bigbrotr_config::{Env, Implementation};
use bigbrotr_synchronizer::SynchronizerFile;
use bigbrotr_test_support::workspace_root;

#[test]
fn every_implementation_ships_a_synchronizer_file_with_the_documented_defaults() {
    for name in ["bigbrotr", "lilbrotr"] {
        let implementation = Implementation::open(&workspace_root(), name).expect("found");
        let file: SynchronizerFile = implementation
            .load("services", "synchronizer", &Env::empty())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(file, SynchronizerFile::default(), "{name}");
    }
}
