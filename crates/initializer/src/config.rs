//! The file `config/services/initializer.yaml`.

use bigbrotr_config::{Problems, Validate};
use serde::{Deserialize, Serialize};

/// Most relays per batch.
pub(crate) const MAX_BATCH_SIZE: usize = 100_000;

/// The `initializer` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InitializerConfig {
    /// Create or upgrade the schema first, as `bigbrotr db init` does.
    /// Default `true`.
    pub ensure_schema: bool,
    /// The seed file: one relay URL per line, `#` starts a comment. A
    /// relative path is taken from the implementation's `data/` folder.
    /// Default `seed_relays.txt`.
    pub seed_file: String,
    /// Relays stored per batch, from 1 to 100 000. Default 100.
    pub batch_size: usize,
}

impl Default for InitializerConfig {
    fn default() -> Self {
        Self {
            ensure_schema: true,
            seed_file: "seed_relays.txt".to_owned(),
            batch_size: 100,
        }
    }
}

impl Validate for InitializerConfig {
    fn validate(&self, problems: &mut Problems) {
        if self.seed_file.trim().is_empty() {
            problems.push("seed_file", "must not be empty");
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            problems.push("batch_size", format!("must be from 1 to {MAX_BATCH_SIZE}"));
        }
    }
}

bigbrotr_service_runtime::service_file! {
    /// The file `config/services/initializer.yaml`: the common sections and
    /// `initializer`.
    pub struct InitializerFile {
        /// Schema, seed file and batch size.
        pub initializer: InitializerConfig,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bigbrotr_config::{load_str, Env, Error, Problem};

    use super::*;

    #[test]
    fn the_defaults_seed_from_the_data_folder_in_batches_of_100() {
        let file: InitializerFile =
            load_str("", Path::new("initializer.yaml"), &Env::empty()).expect("valid");
        assert_eq!(file.initializer, InitializerConfig::default());
        assert!(file.initializer.ensure_schema);
        assert_eq!(file.initializer.seed_file, "seed_relays.txt");
        assert_eq!(file.initializer.batch_size, 100);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_their_key() {
        let error = load_str::<InitializerFile>(
            "initializer:\n  batch_size: 0\n  seed_fil: x.txt\n",
            Path::new("initializer.yaml"),
            &Env::empty(),
        )
        .expect_err("invalid");
        let Error::Invalid { problems, .. } = error else {
            panic!("expected Invalid, got {error:?}");
        };
        assert_eq!(
            problems,
            [
                Problem::new(
                    "initializer.seed_fil",
                    "unknown key; expected one of `ensure_schema`, `seed_file`, `batch_size`"
                ),
                Problem::new("initializer.batch_size", "must be from 1 to 100000"),
            ]
        );
    }
}
