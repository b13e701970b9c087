//! Implementations: named folders holding configuration, SQL and data.
//!
//! ```text
//! <root>/implementations/<name>/
//!     .env                      variables for this implementation (optional)
//!     config/<kind>/<file>.yaml configuration, e.g. config/core/pool.yaml
//!     sql/                      the database schema, in numbered files
//!     data/                     data files shipped with the implementation
//! ```

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::error::{Error, Result};
use crate::load::{load_file, ConfigFile};

/// Variable naming the repository root when no root is given explicitly.
pub const ROOT_VARIABLE: &str = "BIGBROTR_ROOT";

/// Folder under the root that holds the implementations.
pub(crate) const IMPLEMENTATIONS_DIR: &str = "implementations";

/// One implementation, found by name under a root folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Implementation {
    root: PathBuf,
    name: String,
    dir: PathBuf,
}

/// One configuration file of an implementation, as listed by
/// [`Implementation::list_config_files`]: its kind (the folder under
/// `config/`), its name without `.yaml`, and its path.
pub type ConfigFileEntry = (String, String, PathBuf);

impl Implementation {
    /// The folder holding `implementations/`: `explicit` when given (the
    /// `--root` option), else the variable `BIGBROTR_ROOT` when set and not
    /// empty, else the current folder.
    #[must_use]
    pub fn discover_root(explicit: Option<&Path>, env: &Env) -> PathBuf {
        if let Some(root) = explicit {
            return root.to_path_buf();
        }
        match env.get(ROOT_VARIABLE) {
            Some(root) if !root.is_empty() => PathBuf::from(root),
            _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        }
    }

    /// The implementation `name` under `root`: the folder
    /// `root/implementations/<name>` must exist.
    ///
    /// `name` must be a plain folder name: not empty, not `.`, and without
    /// `/`, `\` or `..`.
    pub fn open(root: &Path, name: &str) -> Result<Self> {
        if name.is_empty() || name == "." || name.contains(['/', '\\']) || name.contains("..") {
            return Err(Error::InvalidImplementationName {
                name: name.to_owned(),
            });
        }
        let dir = root.join(IMPLEMENTATIONS_DIR).join(name);
        if !dir.is_dir() {
            return Err(Error::ImplementationNotFound {
                name: name.to_owned(),
                path: dir,
            });
        }
        Ok(Self {
            root: root.to_path_buf(),
            name: name.to_owned(),
            dir,
        })
    }

    /// The root folder the implementation was found under.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The name of the implementation.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder of the implementation.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a configuration file: `dir/config/<kind>/<file>.yaml`.
    #[must_use]
    pub fn config_path(&self, kind: &str, file: &str) -> PathBuf {
        self.dir
            .join("config")
            .join(kind)
            .join(format!("{file}.yaml"))
    }

    /// The folder of the SQL schema files: `dir/sql`.
    #[must_use]
    pub fn sql_dir(&self) -> PathBuf {
        self.dir.join("sql")
    }

    /// The folder of the data files: `dir/data`.
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The `.env` file of the implementation: `dir/.env`.
    #[must_use]
    pub fn dotenv_path(&self) -> PathBuf {
        self.dir.join(".env")
    }

    /// Every `*.yaml` file in a folder directly under `dir/config`, as
    /// `(kind, file, path)`, sorted by kind then file. No `config` folder
    /// means no files.
    pub fn list_config_files(&self) -> Result<Vec<ConfigFileEntry>> {
        let config = self.dir.join("config");
        let mut files = Vec::new();
        for kind_dir in read_dir(&config)? {
            if !kind_dir.is_dir() {
                continue;
            }
            let Some(kind) = utf8_name(&kind_dir) else {
                continue;
            };
            for path in read_dir(&kind_dir)? {
                let Some(file) =
                    utf8_name(&path).and_then(|name| name.strip_suffix(".yaml").map(str::to_owned))
                else {
                    continue;
                };
                if !file.is_empty() && path.is_file() {
                    files.push((kind.clone(), file, path));
                }
            }
        }
        files.sort();
        Ok(files)
    }

    /// Loads the configuration file `config/<kind>/<file>.yaml` with `env`;
    /// see [`load_file`]. A missing file is [`Error::FileNotFound`].
    pub fn load<T: ConfigFile>(&self, kind: &str, file: &str, env: &Env) -> Result<T> {
        load_file(&self.config_path(kind, file), env)
    }
}

/// The entries of the folder `dir`; none when it does not exist.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_error = |source| Error::Read {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if source.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(read_error(source)),
    };
    entries
        .map(|entry| entry.map(|entry| entry.path()).map_err(read_error))
        .collect()
}

/// The last component of `path`, when it is valid UTF-8.
fn utf8_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PoolFile;

    fn root_with(name: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("a temporary folder");
        fs::create_dir_all(root.path().join(IMPLEMENTATIONS_DIR).join(name)).expect("writable");
        root
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("a parent")).expect("writable");
        fs::write(path, text).expect("writable");
    }

    #[test]
    fn an_explicit_root_wins_over_the_variable() {
        let env = Env::from_pairs([(ROOT_VARIABLE, "/from/env")]);
        assert_eq!(
            Implementation::discover_root(Some(Path::new("explicit")), &env),
            PathBuf::from("explicit")
        );
        assert_eq!(
            Implementation::discover_root(None, &env),
            PathBuf::from("/from/env")
        );
    }

    #[test]
    fn without_root_or_variable_the_current_folder_is_the_root() {
        let current = std::env::current_dir().expect("a current folder");
        assert_eq!(Implementation::discover_root(None, &Env::empty()), current);
        let empty = Env::from_pairs([(ROOT_VARIABLE, "")]);
        assert_eq!(Implementation::discover_root(None, &empty), current);
    }

    #[test]
    fn an_existing_implementation_opens_with_its_paths() {
        let root = root_with("demo");
        let imp = Implementation::open(root.path(), "demo").expect("exists");
        let dir = root.path().join("implementations/demo");
        assert_eq!(imp.root(), root.path());
        assert_eq!(imp.name(), "demo");
        assert_eq!(imp.dir(), dir);
        assert_eq!(
            imp.config_path("core", "pool"),
            dir.join("config/core/pool.yaml")
        );
        assert_eq!(imp.sql_dir(), dir.join("sql"));
        assert_eq!(imp.data_dir(), dir.join("data"));
        assert_eq!(imp.dotenv_path(), dir.join(".env"));
    }

    #[test]
    fn a_missing_implementation_names_the_path_tried() {
        let root = root_with("demo");
        match Implementation::open(root.path(), "other") {
            Err(Error::ImplementationNotFound { name, path }) => {
                assert_eq!(name, "other");
                assert_eq!(path, root.path().join("implementations/other"));
            }
            other => panic!("expected ImplementationNotFound, got {other:?}"),
        }
    }

    #[test]
    fn names_that_are_not_plain_folder_names_are_rejected() {
        let root = root_with("demo");
        for name in ["", ".", "..", "../demo", "a/b", "a\\b", "x..y"] {
            assert!(
                matches!(
                    Implementation::open(root.path(), name),
                    Err(Error::InvalidImplementationName { name: ref given }) if given == name
                ),
                "for {name:?}"
            );
        }
    }

    #[test]
    fn config_files_are_listed_sorted_and_only_yaml() {
        let root = root_with("demo");
        let imp = Implementation::open(root.path(), "demo").expect("exists");
        assert_eq!(
            imp.list_config_files().expect("no config folder is fine"),
            []
        );
        let config = imp.dir().join("config");
        write(&config.join("services/finder.yaml"), "");
        write(&config.join("core/pool.yaml"), "");
        write(&config.join("core/brotr.yaml"), "");
        write(&config.join("core/notes.txt"), "");
        write(&config.join("core/.yaml"), "");
        write(&config.join("stray.yaml"), "");
        fs::create_dir_all(config.join("core/nested.yaml")).expect("writable");
        let listed = imp.list_config_files().expect("readable");
        assert_eq!(
            listed,
            [
                (
                    "core".into(),
                    "brotr".into(),
                    config.join("core/brotr.yaml")
                ),
                ("core".into(), "pool".into(), config.join("core/pool.yaml")),
                (
                    "services".into(),
                    "finder".into(),
                    config.join("services/finder.yaml")
                ),
            ]
        );
    }

    #[test]
    fn a_config_folder_that_is_a_file_is_a_read_error() {
        let root = root_with("demo");
        let imp = Implementation::open(root.path(), "demo").expect("exists");
        write(&imp.dir().join("config"), "not a folder");
        assert!(matches!(
            imp.list_config_files(),
            Err(Error::Read { path, .. }) if path == imp.dir().join("config")
        ));
    }

    #[test]
    fn loading_a_missing_file_is_file_not_found() {
        let root = root_with("demo");
        let imp = Implementation::open(root.path(), "demo").expect("exists");
        match imp.load::<PoolFile>("core", "pool", &Env::empty()) {
            Err(Error::FileNotFound { path }) => {
                assert_eq!(path, imp.config_path("core", "pool"));
            }
            other => panic!("expected FileNotFound, got {other:?}"),
        }
    }

    #[test]
    fn loading_a_file_expands_and_layers_it() {
        let root = root_with("demo");
        let imp = Implementation::open(root.path(), "demo").expect("exists");
        write(
            &imp.config_path("core", "pool"),
            "database:\n  host: ${DB_HOST:localhost}\npool:\n  max_size: 3\n",
        );
        let env = Env::from_pairs([("DB_HOST", "db"), ("BIGBROTR_POOL__MIN_SIZE", "2")]);
        let file: PoolFile = imp.load("core", "pool", &env).expect("valid");
        assert_eq!(file.database.host, "db");
        assert_eq!((file.pool.min_size, file.pool.max_size), (2, 3));
    }
}
