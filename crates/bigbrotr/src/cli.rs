//! The command line of `bigbrotr`.

use std::io::IsTerminal as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bigbrotr_config::{Env, Implementation};
use clap::{Parser, Subcommand};

/// BigBrotr archives the Nostr network into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "bigbrotr", version, about)]
pub struct Cli {
    /// Folder holding `implementations/` (default: $BIGBROTR_ROOT, else the current folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Name of the implementation to use: a folder of `implementations/`.
    #[arg(
        long,
        short = 'i',
        global = true,
        default_value = "bigbrotr",
        value_name = "NAME"
    )]
    pub implementation: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configuration commands.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Database commands.
    Db {
        /// What to do with the database.
        #[command(subcommand)]
        action: DbAction,
    },
    /// Archive NIP-01 events read as JSON lines, with provenance to one relay.
    Import {
        /// The file to read, or `-` for standard input.
        #[arg(value_name = "FILE|-")]
        input: PathBuf,
        /// The relay the events were seen on.
        #[arg(long, value_name = "URL")]
        relay: String,
        /// Write refused lines, with their reason, to this file (JSON lines).
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// Events per batch (default: `brotr.batch_size`).
        #[arg(long)]
        batch_size: Option<NonZeroUsize>,
    },
    /// Run services until they end, one fails, or SIGINT/SIGTERM stops them.
    Run {
        /// The services to run, by the name of their file under `config/services/`.
        #[arg(required = true, value_name = "SERVICE")]
        services: Vec<String>,
        /// Run one iteration of each service, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Write archived events as JSON lines, each exactly the signed event.
    Export {
        /// Only events created at or after this time (Unix seconds or RFC 3339).
        #[arg(long, value_parser = crate::export::parse_time)]
        since: Option<i64>,
        /// Only events created at or before this time (Unix seconds or RFC 3339).
        #[arg(long, value_parser = crate::export::parse_time)]
        until: Option<i64>,
        /// Only events of this kind; repeat for several.
        #[arg(long = "kind", value_name = "K")]
        kinds: Vec<u16>,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// What `db` does.
#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Create or upgrade the schema of the configured database, store the
    /// session limits of `role` (pool.yaml) for its user, and create or
    /// update the reader and writer of `roles` when they are named.
    Init,
}

/// What `config` does.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Load every configuration file of the implementation and print all problems.
    Check,
    /// Print the Markdown reference of every configuration file: each key's
    /// form, default, value in the file, override variable and description.
    Reference,
}

/// Runs a parsed command line; what it prints for the user goes to `out`.
pub async fn run(cli: &Cli, out: &mut (dyn std::io::Write + Send)) -> anyhow::Result<()> {
    let process = Env::from_process();
    let root = Implementation::discover_root(cli.root.as_deref(), &process);
    let implementation = Implementation::open(&root, &cli.implementation)
        .with_context(|| format!("opening implementation `{}`", cli.implementation))?;
    let env = process
        .with_dotenv(&implementation.dotenv_path())
        .context("reading the implementation's .env")?;
    match &cli.command {
        Command::Config {
            action: ConfigAction::Check,
        } => crate::check::check(&implementation, &env, out),
        Command::Config {
            action: ConfigAction::Reference,
        } => {
            out.write_all(crate::reference::reference(&implementation)?.as_bytes())?;
            Ok(())
        }
        Command::Run { services, once } => {
            let options = bigbrotr_service_runtime::RunOptions {
                once: *once,
                ..bigbrotr_service_runtime::RunOptions::default()
            };
            crate::services::run_services(&implementation, &env, services, options, out).await
        }
        Command::Db {
            action: DbAction::Init,
        } => {
            let brotr = crate::archive::open_archive(&implementation, &env).await?;
            let report = bigbrotr_brotr::apply_schema(brotr.pool(), &implementation.sql_dir())
                .await
                .context("applying the schema")?;
            let pool_file: bigbrotr_config::PoolFile = implementation
                .load("core", "pool", &env)
                .context("loading config/core/pool.yaml")?;
            crate::archive::store_role_limits(brotr.pool(), &pool_file.role).await?;
            let roles =
                crate::archive::store_roles(brotr.pool(), &pool_file.roles, &pool_file.role, &env)
                    .await?;
            writeln!(
                out,
                "schema version {} of `{}`: {} file(s) applied, {} already present",
                report.version(),
                implementation.name(),
                report.applied.len(),
                report.already_present.len()
            )?;
            for role in roles {
                writeln!(out, "role `{role}` created or updated")?;
            }
            brotr
                .pool()
                .disconnect(std::time::Duration::from_secs(5))
                .await;
            Ok(())
        }
        Command::Import {
            input,
            relay,
            rejects,
            batch_size,
        } => {
            let brotr = crate::archive::open_archive(&implementation, &env).await?;
            let summary = import_file(&brotr, input, relay, rejects.as_deref(), *batch_size).await;
            brotr
                .pool()
                .disconnect(std::time::Duration::from_secs(5))
                .await;
            writeln!(out, "{}", summary?)?;
            Ok(())
        }
        Command::Export {
            since,
            until,
            kinds,
            output,
        } => {
            let brotr = crate::archive::open_archive(&implementation, &env).await?;
            let filter = bigbrotr_brotr::EventFilter {
                since: *since,
                until: *until,
                kinds: (!kinds.is_empty()).then(|| kinds.iter().map(|&k| i32::from(k)).collect()),
            };
            let result = match output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
                    crate::export::export(&brotr, &filter, &mut writer).await
                }
                None => {
                    let mut writer = std::io::BufWriter::with_capacity(1 << 20, out);
                    crate::export::export(&brotr, &filter, &mut writer).await
                }
            };
            brotr
                .pool()
                .disconnect(std::time::Duration::from_secs(5))
                .await;
            let written = result?;
            if output.is_some() || std::io::stderr().is_terminal() {
                eprintln!("exported {written} events");
            }
            Ok(())
        }
    }
}

async fn import_file(
    brotr: &bigbrotr_brotr::Brotr,
    input: &Path,
    relay: &str,
    rejects: Option<&Path>,
    batch_size: Option<NonZeroUsize>,
) -> anyhow::Result<crate::import::ImportSummary> {
    let now = bigbrotr_utils::now_timestamp();
    let relay_id = brotr
        .insert_relay(relay, now)
        .await
        .with_context(|| format!("recording relay `{relay}`"))?;
    let reader: Box<dyn std::io::BufRead + Send> = if input == Path::new("-") {
        Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    let rejects = rejects
        .map(|path| {
            std::fs::File::create(path)
                .map(std::io::BufWriter::new)
                .with_context(|| format!("creating {}", path.display()))
        })
        .transpose()?;
    let default_batch = NonZeroUsize::new(brotr.config().batch_size).unwrap_or(NonZeroUsize::MIN);
    let options = crate::import::ImportOptions {
        batch_size: batch_size.unwrap_or(default_batch),
        in_flight: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        seen_at: None,
    };
    let show_progress = std::io::stderr().is_terminal();
    crate::import::import(brotr, reader, relay_id, &options, rejects, |summary| {
        if show_progress {
            eprint!("\r{summary}\x1b[K");
        }
    })
    .await
    .inspect(|_| {
        if show_progress {
            eprintln!();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn run_args(args: &[&str]) -> (anyhow::Result<()>, String) {
        let cli = Cli::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(run(&cli, &mut out));
        (result, String::from_utf8(out).unwrap())
    }

    #[test]
    fn config_check_passes_on_the_shipped_implementation() {
        let root = repository_root();
        let (result, out) = run_args(&[
            "bigbrotr",
            "--root",
            root.to_str().unwrap(),
            "config",
            "check",
        ]);
        result.unwrap();
        assert!(out.contains("ok      core/pool.yaml"), "{out}");
        assert!(out.contains("ok      core/brotr.yaml"), "{out}");
        assert!(out.contains("ok      core/logging.yaml"), "{out}");
        assert!(out.contains("ok      core/runtime.yaml"), "{out}");
        assert!(out.contains("ok      services/initializer.yaml"), "{out}");
    }

    #[test]
    fn config_check_loads_service_files_with_their_typed_config() {
        let root = tempfile::tempdir().unwrap();
        let services = root.path().join("implementations/mine/config/services");
        std::fs::create_dir_all(&services).unwrap();
        std::fs::write(
            services.join("initializer.yaml"),
            "initializer:\n  batch_size: 0\n  seed_fil: x.txt\nloop:\n  interval: 0\n",
        )
        .unwrap();
        std::fs::write(services.join("finderr.yaml"), "service: {}\n").unwrap();
        let (result, out) = run_args(&[
            "bigbrotr",
            "--root",
            root.path().to_str().unwrap(),
            "-i",
            "mine",
            "config",
            "check",
        ]);
        let error = result.unwrap_err().to_string();
        assert_eq!(error, "1 of 2 configuration files of `mine` have problems");
        let file = services.join("initializer.yaml");
        assert!(
            out.contains(&format!(
                "problem services/initializer.yaml: invalid configuration in {}:",
                file.display()
            )),
            "{out}"
        );
        assert!(
            out.contains("  initializer.seed_fil: unknown key; expected one of `ensure_schema`, `seed_file`, `batch_size`"),
            "{out}"
        );
        assert!(
            out.contains("  initializer.batch_size: must be from 1 to 100000"),
            "{out}"
        );
        assert!(out.contains("  loop.interval: must be > 0"), "{out}");
        assert!(
            out.contains(
                "unknown services/finderr.yaml: no service is named `finderr`; known services: "
            ),
            "{out}"
        );
    }

    #[test]
    fn running_an_unknown_service_lists_the_known_ones() {
        let root = repository_root();
        let (result, _) = run_args(&[
            "bigbrotr",
            "--root",
            root.to_str().unwrap(),
            "run",
            "initializer",
            "nosuch",
        ]);
        let error = format!("{:#}", result.unwrap_err());
        assert!(
            error.starts_with("unknown service `nosuch`; known services: "),
            "{error}"
        );
        assert!(error.contains("initializer"), "{error}");
    }

    #[test]
    fn run_needs_at_least_one_service() {
        let error = Cli::try_parse_from(["bigbrotr", "run", "--once"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
        let cli = Cli::try_parse_from(["bigbrotr", "run", "initializer", "--once"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run { ref services, once: true } if services == &["initializer"]
        ));
    }

    #[test]
    fn config_check_reports_every_bad_file_and_fails() {
        let root = tempfile::tempdir().unwrap();
        let core = root.path().join("implementations/mine/config/core");
        std::fs::create_dir_all(&core).unwrap();
        std::fs::write(core.join("pool.yaml"), "pool:\n  max_size: 0\n  bogus: 1\n").unwrap();
        std::fs::write(core.join("brotr.yaml"), "brotr: [unclosed\n").unwrap();
        let (result, out) = run_args(&[
            "bigbrotr",
            "--root",
            root.path().to_str().unwrap(),
            "-i",
            "mine",
            "config",
            "check",
        ]);
        let error = result.unwrap_err().to_string();
        assert_eq!(error, "2 of 2 configuration files of `mine` have problems");
        assert!(out.contains("problem core/pool.yaml"), "{out}");
        assert!(out.contains("pool.max_size"), "{out}");
        assert!(out.contains("pool.bogus"), "{out}");
        assert!(out.contains("problem core/brotr.yaml"), "{out}");
    }

    #[test]
    fn an_unknown_implementation_is_named_in_the_error() {
        let root = tempfile::tempdir().unwrap();
        let (result, _) = run_args(&[
            "bigbrotr",
            "--root",
            root.path().to_str().unwrap(),
            "-i",
            "nope",
            "config",
            "check",
        ]);
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains("opening implementation `nope`"), "{error}");
        assert!(error.contains("implementations/nope"), "{error}");
    }
}
