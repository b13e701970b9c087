//! Where BigBrotr may connect: the file `config/core/egress.yaml`.

use bigbrotr_utils::{AllowEntry, EgressPolicy};
use serde::{Deserialize, Serialize};

use crate::validate::{Problems, Validate};

/// The file `config/core/egress.yaml`: the egress policy every service
/// connects through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EgressFile {
    /// Which addresses may be connected to.
    pub egress: EgressConfig,
}

impl Validate for EgressFile {
    fn validate(&self, problems: &mut Problems) {
        problems.section("egress", &self.egress);
    }
}

/// Which addresses may be connected to. Relay URLs come from strangers, so
/// by default no connection goes to a loopback, private, link-local,
/// shared (CGNAT), benchmarking, multicast, broadcast, reserved,
/// unspecified or documentation address (nor their IPv4-mapped, 6to4 and
/// NAT64 forms), whatever name led there; `.onion` relays reached through
/// the SOCKS5 proxy are not concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Whether loopback, private (RFC 1918), link-local, shared (CGNAT)
    /// and IPv6 unique-local and site-local addresses may be connected to.
    /// Default `false`: such addresses only make sense on the network that
    /// published them.
    pub allow_private: bool,
    /// Exceptions, each a network in CIDR notation (`127.0.0.1/32`,
    /// `fd00::/8`) or one `address:port` (`127.0.0.1:7777`,
    /// `[::1]:7777`). Default none.
    pub allow: Vec<String>,
}

impl EgressConfig {
    /// The exceptions, parsed; entries that do not parse are left out
    /// (a loaded file has none: [`Validate`] reports them).
    #[must_use]
    pub fn allow_entries(&self) -> Vec<AllowEntry> {
        self.allow
            .iter()
            .filter_map(|entry| entry.parse().ok())
            .collect()
    }

    /// The policy this section describes.
    #[must_use]
    pub fn policy(&self) -> EgressPolicy {
        EgressPolicy::new(self.allow_private, self.allow_entries())
    }
}

impl Validate for EgressConfig {
    fn validate(&self, problems: &mut Problems) {
        for (index, entry) in self.allow.iter().enumerate() {
            if let Err(error) = entry.parse::<AllowEntry>() {
                problems.push(format!("allow[{index}]"), error.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::env::Env;
    use crate::load::load_str;
    use crate::validate::Problem;

    use super::*;

    fn load(text: &str, env: &Env) -> crate::Result<EgressFile> {
        load_str(text, Path::new("egress.yaml"), env)
    }

    #[test]
    fn the_default_is_the_strict_policy() {
        let file = load("", &Env::empty()).expect("valid");
        assert_eq!(file, EgressFile::default());
        assert_eq!(file.egress.policy(), EgressPolicy::strict());
    }

    #[test]
    fn private_addresses_and_exceptions_come_from_the_file_and_the_environment() {
        let file = load(
            "egress:\n  allow_private: true\n  allow: [\"127.0.0.1/32\", \"[::1]:7777\"]\n",
            &Env::empty(),
        )
        .expect("valid");
        let policy = file.egress.policy();
        assert!(policy.allow_private());
        assert_eq!(policy.allow().len(), 2);
        let env = Env::from_pairs([("BIGBROTR_EGRESS__ALLOW", "[10.0.0.0/8]")]);
        let file = load("", &env).expect("valid");
        assert_eq!(file.egress.allow, ["10.0.0.0/8"]);
        assert!(file
            .egress
            .policy()
            .check("10.1.2.3:80".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn an_entry_that_is_neither_a_network_nor_an_address_and_port_is_reported() {
        let error = load(
            "egress:\n  allow: [\"127.0.0.1/32\", \"localhost:7777\"]\n",
            &Env::empty(),
        )
        .expect_err("invalid");
        match error {
            crate::Error::Invalid { problems, .. } => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].path, "egress.allow[1]");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let config = EgressConfig {
            allow_private: false,
            allow: vec!["nonsense".into(), "10.0.0.1:80".into()],
        };
        assert_eq!(config.allow_entries().len(), 1);
        let mut problems = Problems::new();
        config.validate(&mut problems);
        assert_eq!(
            problems.into_vec(),
            [Problem::new(
                "allow[0]",
                "`nonsense` is neither a network (`127.0.0.1/32`, `fd00::/8`) nor an `address:port` (`127.0.0.1:7777`, `[::1]:7777`)"
            )]
        );
    }
}
