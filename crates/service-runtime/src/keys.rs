//! A service's secret key (the monitor signs with it, the synchronizer
//! authenticates with it), from an environment variable, never from a file.

use bigbrotr_config::Env;
use nostr_sdk::Keys;

use crate::error::{Error, Result};

/// The keys whose secret key (hex or `nsec`) the variable `var` of `env`
/// holds; `None` when the variable is unset or blank.
///
/// Fails with [`Error::InvalidKey`], naming the variable but never its
/// value, when the value is not a secret key.
///
/// ```
/// use bigbrotr_config::Env;
///
/// let env = Env::from_pairs([("MONITOR_PRIVATE_KEY", "not a key")]);
/// let error = bigbrotr_service_runtime::keys_from_env(&env, "MONITOR_PRIVATE_KEY").unwrap_err();
/// assert!(error.to_string().contains("MONITOR_PRIVATE_KEY"));
/// assert!(!error.to_string().contains("not a key"));
/// assert!(bigbrotr_service_runtime::keys_from_env(&Env::empty(), "MONITOR_PRIVATE_KEY")?.is_none());
/// # Ok::<(), bigbrotr_service_runtime::Error>(())
/// ```
pub fn keys_from_env(env: &Env, var: &str) -> Result<Option<Keys>> {
    let Some(value) = env.get(var).map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    Keys::parse(value)
        .map(Some)
        .map_err(|source| Error::InvalidKey {
            variable: var.to_owned(),
            source,
        })
}

/// The keys of the service `service`: those of the variable `var` of `env`
/// ([`keys_from_env`]), or, when it is unset, new ones generated for this
/// run, with a warning (the service works the same, but what it signs comes
/// from a new author at each start).
pub fn service_keys(env: &Env, var: &str, service: &str) -> Result<Keys> {
    if let Some(keys) = keys_from_env(env, var)? {
        return Ok(keys);
    }
    let keys = Keys::generate();
    tracing::warn!(
        target: "bigbrotr::runtime",
        service,
        variable = var,
        public_key = %keys.public_key(),
        "no secret key in the environment: using a new key for this run"
    );
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use nostr_sdk::ToBech32;

    use super::*;

    const VAR: &str = "MONITOR_PRIVATE_KEY";

    #[test]
    fn an_unset_or_blank_variable_gives_no_keys() {
        assert!(keys_from_env(&Env::empty(), VAR).unwrap().is_none());
        let env = Env::from_pairs([(VAR, "  ")]);
        assert!(keys_from_env(&env, VAR).unwrap().is_none());
    }

    #[test]
    fn hex_and_nsec_secret_keys_are_read() {
        let keys = Keys::generate();
        let hex = keys.secret_key().to_secret_hex();
        let nsec = keys.secret_key().to_bech32().unwrap();
        for value in [hex, nsec] {
            let env = Env::from_pairs([(VAR, format!(" {value}\n"))]);
            let read = keys_from_env(&env, VAR).unwrap().expect("keys");
            assert_eq!(read.public_key(), keys.public_key());
        }
    }

    #[test]
    fn an_invalid_value_is_an_error_naming_the_variable_without_the_value() {
        let secret_looking = "ab".repeat(31);
        for value in ["nsec1nothing", secret_looking.as_str(), "zz"] {
            let env = Env::from_pairs([("MY_KEY", value)]);
            let error = keys_from_env(&env, "MY_KEY").unwrap_err();
            assert!(
                matches!(&error, Error::InvalidKey { variable, .. } if variable == "MY_KEY"),
                "{error:?}"
            );
            let mut shown = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                shown.push_str(&cause.to_string());
                source = cause.source();
            }
            assert!(!shown.contains(value), "{shown}");
            assert!(!format!("{error:?}").contains(value));
        }
    }

    #[test]
    fn without_a_variable_a_new_key_is_generated() {
        let a = service_keys(&Env::empty(), VAR, "monitor").unwrap();
        let b = service_keys(&Env::empty(), VAR, "monitor").unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let env = Env::from_pairs([(VAR, a.secret_key().to_secret_hex())]);
        assert_eq!(
            service_keys(&env, VAR, "monitor").unwrap().public_key(),
            a.public_key()
        );
        assert!(service_keys(&Env::from_pairs([(VAR, "x")]), VAR, "monitor").is_err());
    }
}
