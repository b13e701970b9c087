//! [`FileType`]: one kind of configuration file, known by its struct, as
//! the configuration reference documents it.

use std::fmt;
use std::path::Path;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::load::{load_str, ConfigFile};

/// A configuration file `config/<folder>/<name>.yaml` and the struct it is
/// loaded into, with what documenting it needs: the struct's JSON Schema
/// (doc comments included) and a way to load a text of the file into JSON.
///
/// ```
/// use bigbrotr_config::{Env, FileType, PoolFile};
/// # use std::path::Path;
///
/// let pool = FileType::of::<PoolFile>("core", "pool");
/// assert_eq!(pool.type_name(), ("bigbrotr_config", "PoolFile"));
/// assert!(pool.schema().get("properties").is_some());
/// let loaded = pool.load("pool:\n  max_size: 3\n", Path::new("pool.yaml"), &Env::empty()).unwrap();
/// assert_eq!(loaded["pool"]["max_size"], 3);
/// ```
#[derive(Clone, Copy)]
pub struct FileType {
    folder: &'static str,
    name: &'static str,
    type_name: &'static str,
    schema: fn() -> schemars::Schema,
    load: fn(&str, &Path, &Env) -> Result<serde_json::Value>,
}

impl fmt::Debug for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileType")
            .field("folder", &self.folder)
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .finish_non_exhaustive()
    }
}

impl FileType {
    /// The file `config/<folder>/<name>.yaml`, loaded into `T`.
    #[must_use]
    pub fn of<T: ConfigFile>(folder: &'static str, name: &'static str) -> Self {
        Self {
            folder,
            name,
            type_name: std::any::type_name::<T>(),
            schema: || schemars::schema_for!(T),
            load: load_json::<T>,
        }
    }

    /// The folder under `config/`: `core` or `services`.
    #[must_use]
    pub fn folder(&self) -> &'static str {
        self.folder
    }

    /// The name of the file without `.yaml`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The crate and the name of the struct: `("bigbrotr_config", "PoolFile")`.
    #[must_use]
    pub fn type_name(&self) -> (&'static str, &'static str) {
        let krate = self.type_name.split("::").next().unwrap_or(self.type_name);
        let name = self.type_name.rsplit("::").next().unwrap_or(self.type_name);
        (krate, name)
    }

    /// The JSON Schema of the struct: each field's form, default and doc
    /// comment.
    #[must_use]
    pub fn schema(&self) -> schemars::Schema {
        (self.schema)()
    }

    /// Loads `text` as [`load_str`] does and serializes the result to JSON;
    /// `file` only names the text in errors.
    pub fn load(&self, text: &str, file: &Path, env: &Env) -> Result<serde_json::Value> {
        (self.load)(text, file, env)
    }
}

/// [`load_str`] into `T`, then JSON.
fn load_json<T: ConfigFile>(text: &str, file: &Path, env: &Env) -> Result<serde_json::Value> {
    let loaded: T = load_str(text, file, env)?;
    serde_json::to_value(loaded).map_err(|source| Error::Serialize {
        type_name: std::any::type_name::<T>(),
        source,
    })
}
