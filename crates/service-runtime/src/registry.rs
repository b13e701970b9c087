//! The services a program knows by name: [`ServiceRegistry`].

use std::fmt;

use bigbrotr_config::{Env, FileType, Implementation};

use crate::config::{load_service_file, ServiceFile};
use crate::error::{Error, Result};
use crate::lifecycle::{Runtime, ServiceHandle};
use crate::service::Service;

type Loader = fn(&Implementation, &Env, bool) -> Result<LoadedService>;

/// The services a program can run, by name: one
/// [`register`](Self::register) line each.
///
/// ```
/// # use bigbrotr_service_runtime::{Service, ServiceContext};
/// # use tokio_util::sync::CancellationToken;
/// # bigbrotr_service_runtime::service_file! { pub struct NoopFile {} }
/// # struct Noop;
/// # impl Service for Noop {
/// #     const NAME: &'static str = "noop";
/// #     type Config = NoopFile;
/// #     fn build(_: &ServiceContext<NoopFile>) -> anyhow::Result<Self> { Ok(Noop) }
/// #     async fn run(self, _: ServiceContext<NoopFile>, _: CancellationToken) -> anyhow::Result<()> { Ok(()) }
/// # }
/// use bigbrotr_service_runtime::ServiceRegistry;
///
/// let registry = ServiceRegistry::new().register::<Noop>();
/// assert_eq!(registry.names(), ["noop"]);
/// assert!(registry.contains("noop"));
/// ```
#[derive(Clone, Default)]
pub struct ServiceRegistry {
    /// In the order registered.
    services: Vec<Registered>,
}

/// A service of a [`ServiceRegistry`].
#[derive(Clone)]
struct Registered {
    name: &'static str,
    load: Loader,
    file: FileType,
}

impl fmt::Debug for ServiceRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl ServiceRegistry {
    /// A registry without services.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds service `S` under `S::NAME` (replacing a service of that name,
    /// in its place).
    #[must_use]
    pub fn register<S: Service>(mut self) -> Self {
        let registered = Registered {
            name: S::NAME,
            load: load::<S>,
            file: FileType::of::<S::Config>("services", S::NAME),
        };
        match self
            .services
            .iter_mut()
            .find(|service| service.name == S::NAME)
        {
            Some(service) => *service = registered,
            None => self.services.push(registered),
        }
        self
    }

    /// The names of the services, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.services.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names
    }

    /// Whether a service is registered under `name`.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The file of each service, `config/services/<name>.yaml`, in the
    /// order the services were registered.
    #[must_use]
    pub fn files(&self) -> Vec<FileType> {
        self.services.iter().map(|service| service.file).collect()
    }

    /// The service registered under `name`.
    fn find(&self, name: &str) -> Option<&Registered> {
        self.services.iter().find(|service| service.name == name)
    }

    /// Loads and validates the file of service `name` of `implementation`
    /// with `env`, without starting anything: [`Error::UnknownService`] for
    /// a name not registered, [`Error::Config`] naming the file and every
    /// key with a problem.
    pub fn check(&self, name: &str, implementation: &Implementation, env: &Env) -> Result<()> {
        self.load(name, implementation, env, false).map(drop)
    }

    /// Loads the file of service `name`, ready to start; with `once`, the
    /// service runs a single iteration (`loop.max_iterations` = 1).
    pub fn load(
        &self,
        name: &str,
        implementation: &Implementation,
        env: &Env,
        once: bool,
    ) -> Result<LoadedService> {
        let service = self.find(name).ok_or_else(|| Error::UnknownService {
            name: name.to_owned(),
            known: self.names(),
        })?;
        (service.load)(implementation, env, once)
    }
}

fn load<S: Service>(
    implementation: &Implementation,
    env: &Env,
    once: bool,
) -> Result<LoadedService> {
    let mut config: S::Config = load_service_file(implementation, S::NAME, env)?;
    if once {
        config.loop_config_mut().max_iterations = 1;
    }
    Ok(LoadedService {
        name: S::NAME,
        start: Box::new(move |runtime| runtime.start::<S>(config)),
    })
}

/// A service whose file is loaded and valid, ready to
/// [`start`](Self::start).
pub struct LoadedService {
    name: &'static str,
    start: Box<dyn FnOnce(&Runtime) -> ServiceHandle + Send>,
}

impl fmt::Debug for LoadedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LoadedService {
    /// The name the service is registered under.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Starts the service on `runtime`; see [`Runtime::start`].
    pub fn start(self, runtime: &Runtime) -> ServiceHandle {
        (self.start)(runtime)
    }
}
