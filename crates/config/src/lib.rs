#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Layout
//!
//! - `env`: [`Env`], an immutable snapshot of environment variables, with
//!   the variables of an implementation's `.env` file added.
//! - `expand`: `${VAR}` / `${VAR:default}` expansion of
//!   configuration text.
//! - `implementation`: [`Implementation`], an implementation folder found
//!   by name, and the paths of its configuration, SQL and data.
//! - `load`: [`load_file`], the figment chain from typed
//!   defaults through the expanded YAML to `BIGBROTR_SECTION__KEY`
//!   overrides, the [`ConfigFile`] trait, and [`ExpansionDefaults`], the keys
//!   whose values only a `${VAR:default}` default gave.
//! - `validate`: the [`Validate`] trait and the [`Problem`]s it reports.
//! - [`duration`]: serde helpers for durations written as seconds or with a
//!   unit (`"500ms"`, `"5m"`); a public module, because `#[serde(with)]`
//!   and `#[schemars(with)]` name it by its path.
//! - [`FileType`]: one kind of configuration file with its struct's JSON
//!   Schema, as the configuration reference documents it.
//! - `database`: the file `config/core/pool.yaml` ([`PoolFile`]) and its
//!   sections [`DatabaseConfig`] (with its [`SslMode`]), [`PoolConfig`],
//!   [`RetryConfig`], [`RoleConfig`] and [`RolesConfig`].
//! - `brotr`: the file `config/core/brotr.yaml` ([`BrotrFile`]) and its
//!   section [`BrotrConfig`].
//! - `egress`: the file `config/core/egress.yaml` ([`EgressFile`]) and its
//!   section [`EgressConfig`], the egress policy every connection goes
//!   through.
//! - `service`: the sections shared by service files: [`ServiceConfig`],
//!   [`LoopConfig`] and [`NostrConfig`].
//! - `error`: the [`Error`] of this crate.

mod brotr;
mod database;
pub mod duration;
mod egress;
mod env;
mod error;
mod expand;
mod file_type;
mod implementation;
mod load;
mod service;
mod validate;

pub use brotr::{BrotrConfig, BrotrFile};
pub use database::{
    is_loopback, DatabaseConfig, PoolConfig, PoolFile, RetryConfig, RoleConfig, RolesConfig,
    SslMode,
};
pub use egress::{EgressConfig, EgressFile};
pub use env::Env;
pub use error::{Error, Result};
pub use expand::{expand, references, VariableReference};
pub use file_type::FileType;
pub use implementation::{ConfigFileEntry, Implementation, ROOT_VARIABLE};
pub use load::{load_file, load_str, load_yaml, ConfigFile, ExpansionDefaults};
pub use service::{LoopConfig, NostrConfig, ServiceConfig};
pub use validate::{Problem, ProblemList, Problems, Validate};
