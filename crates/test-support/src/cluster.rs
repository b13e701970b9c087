//! [`PrivateCluster`]: a throw-away PostgreSQL behind its own PgBouncer, for
//! tests that stop or restart the database under load. The shared development
//! database must never be touched that way: other tests run on it meanwhile.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bigbrotr_config::DatabaseConfig;
use secrecy::SecretString;

use crate::{Error, Result};

/// The database every private cluster gets, with the implementation's SQL.
const DATABASE: &str = "bigbrotr";
/// Its owner, a superuser created by `initdb`.
const USER: &str = "bigbrotr";
/// The system user the servers run as when the tests run as root: PostgreSQL
/// refuses to run as root.
const SYSTEM_USER: &str = "postgres";
/// Longest wait for a server to start or stop.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL cluster of its own (initialised in a temporary folder, on a
/// free port of 127.0.0.1, its unix sockets in that folder) behind a PgBouncer
/// of its own (transaction pooling, SCRAM password auth, on another free
/// port), with one database on which an implementation's SQL is applied.
///
/// Both servers run as the `postgres` system user when the tests run as root.
/// Either can be stopped and started again while clients use them; dropping
/// the cluster stops both and removes the folder.
///
/// Started with [`PrivateCluster::start_with_tls`], PostgreSQL also speaks
/// TLS (PgBouncer does not), with a server certificate for `localhost` signed
/// by a certificate authority made for the cluster: see [`TlsFiles`].
///
/// Startup is kept lean: no `fsync`, small buffers. Fine for tests that break
/// connections, not for tests about durability after a crash of the machine.
pub struct PrivateCluster {
    control: Arc<Control>,
    implementation: String,
}

/// What starting and stopping the servers needs; shared with blocking tasks.
struct Control {
    dir: tempfile::TempDir,
    programs: Programs,
    /// Whether commands run as [`SYSTEM_USER`].
    as_system_user: bool,
    pg_port: u16,
    bouncer_port: u16,
    password: String,
    tls: Option<TlsFiles>,
}

struct Programs {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    pgbouncer: PathBuf,
}

/// The certificates of a cluster started with TLS, made with `openssl` in
/// the cluster's folder and valid for two days.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate of the authority that signed the server's
    /// certificate: the right `sslrootcert`.
    pub root_certificate: PathBuf,
    /// PEM certificate of another authority, which signed nothing the
    /// server shows: a wrong `sslrootcert`.
    pub unrelated_root_certificate: PathBuf,
    /// The only name the server's certificate holds (no IP address).
    pub server_name: &'static str,
}

/// The name in the server certificate of a cluster with TLS.
const SERVER_NAME: &str = "localhost";

impl PrivateCluster {
    /// Initialises and starts PostgreSQL and PgBouncer, creates the database
    /// and applies the SQL files of `implementation` to it through PgBouncer.
    /// Takes a few seconds.
    pub async fn start(implementation: &str) -> Result<Self> {
        Self::start_with(implementation, false).await
    }

    /// Like [`start`](Self::start), with TLS on PostgreSQL (not on
    /// PgBouncer): [`tls`](Self::tls) gives the certificates, and
    /// [`direct_database_config`](Self::direct_database_config) reaches the
    /// server. Needs `openssl`.
    pub async fn start_with_tls(implementation: &str) -> Result<Self> {
        Self::start_with(implementation, true).await
    }

    async fn start_with(implementation: &str, tls: bool) -> Result<Self> {
        crate::init_logging();
        let control = tokio::task::spawn_blocking(move || Control::start(tls))
            .await
            .map_err(|error| Error::Io {
                what: "starting the private cluster",
                source: std::io::Error::other(error),
            })??;
        let cluster = Self {
            control: Arc::new(control),
            implementation: implementation.to_owned(),
        };
        cluster.create_database().await?;
        Ok(cluster)
    }

    /// The connection settings of the cluster's database, through its
    /// PgBouncer.
    pub fn database_config(&self) -> DatabaseConfig {
        DatabaseConfig {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: self.control.bouncer_port,
            database: DATABASE.to_owned(),
            user: USER.to_owned(),
            password: SecretString::from(self.control.password.clone()),
            use_pgbouncer: true,
            ..DatabaseConfig::default()
        }
    }

    /// The connection settings of the cluster's database on PostgreSQL
    /// itself, without PgBouncer (and without TLS: set `sslmode` to try it).
    pub fn direct_database_config(&self) -> DatabaseConfig {
        DatabaseConfig {
            port: self.control.pg_port,
            use_pgbouncer: false,
            ..self.database_config()
        }
    }

    /// The certificates, when the cluster was started with TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.control.tls.as_ref()
    }

    /// The implementation whose SQL was applied.
    pub fn implementation(&self) -> &str {
        &self.implementation
    }

    /// Stops PgBouncer at once (SIGTERM: its client connections break) and
    /// waits until it is gone.
    pub async fn stop_pgbouncer(&self) -> Result<()> {
        self.blocking(Control::stop_pgbouncer).await
    }

    /// Starts PgBouncer again and waits until it accepts connections.
    pub async fn start_pgbouncer(&self) -> Result<()> {
        self.blocking(Control::start_pgbouncer).await
    }

    /// Stops PostgreSQL in fast mode (running transactions are rolled back,
    /// their sessions ended) and waits until it is down. PgBouncer keeps its
    /// client connections and fails or holds their queries meanwhile.
    pub async fn stop_postgres(&self) -> Result<()> {
        self.blocking(Control::stop_postgres).await
    }

    /// Starts PostgreSQL again and waits until it accepts connections.
    pub async fn start_postgres(&self) -> Result<()> {
        self.blocking(Control::start_postgres).await
    }

    /// Stops PostgreSQL in fast mode and starts it again.
    pub async fn restart_postgres(&self) -> Result<()> {
        self.blocking(|control| {
            control.stop_postgres()?;
            control.start_postgres()
        })
        .await
    }

    async fn blocking(&self, work: fn(&Control) -> Result<()>) -> Result<()> {
        let control = Arc::clone(&self.control);
        tokio::task::spawn_blocking(move || work(&control))
            .await
            .map_err(|error| Error::Io {
                what: "controlling the private cluster",
                source: std::io::Error::other(error),
            })?
    }

    async fn create_database(&self) -> Result<()> {
        let direct = DatabaseConfig {
            database: "postgres".to_owned(),
            ..self.direct_database_config()
        };
        crate::run_simple(
            &direct,
            "postgres",
            "CREATE DATABASE",
            &format!("CREATE DATABASE \"{DATABASE}\""),
        )
        .await?;
        let (client, driver) = crate::connect_patiently(
            &self.database_config(),
            DATABASE,
            "connecting to apply the SQL files",
        )
        .await?;
        let result = crate::apply_sql(
            &client,
            &crate::implementation_sql_files(&self.implementation)?,
        )
        .await;
        drop(client);
        let _ = driver.await;
        result
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in ["pgbouncer.log", "postgresql.log"] {
                eprintln!(
                    "--- end of the private cluster's {log}:\n{}",
                    tail(&self.control.path(log))
                );
            }
        }
    }
}

impl Drop for Control {
    /// Stops both servers before the folder goes, also when starting the
    /// cluster failed half-way.
    fn drop(&mut self) {
        // Either may be down already; errors change nothing here.
        let _ = self.stop_pgbouncer();
        let _ = self.pg_ctl("stopping PostgreSQL", &["stop", "-m", "immediate"]);
    }
}

impl Control {
    fn start(tls: bool) -> Result<Self> {
        let programs = Programs::find()?;
        let openssl = if tls {
            Some(
                search_path("openssl")
                    .or_else(|| executable(PathBuf::from("/usr/bin/openssl")))
                    .ok_or(Error::MissingProgram { name: "openssl" })?,
            )
        } else {
            None
        };
        let as_system_user = std::fs::metadata("/proc/self")
            .map(|meta| meta.uid() == 0)
            .map_err(|source| Error::Io {
                what: "finding out whether the tests run as root",
                source,
            })?;
        let dir = tempfile::Builder::new()
            .prefix("bigbrotr-cluster-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating the private cluster's folder",
                source,
            })?;
        let mut control = Self {
            dir,
            programs,
            as_system_user,
            pg_port: free_port()?,
            bouncer_port: free_port()?,
            password: format!("pw{:016x}", fastrand::u64(..)),
            tls: None,
        };
        if let Some(openssl) = openssl {
            control.tls = Some(control.make_certificates(&openssl)?);
        }
        control.write_files()?;
        control.initdb()?;
        control.start_postgres()?;
        control.start_pgbouncer()?;
        Ok(control)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_files(&self) -> Result<()> {
        let dir = self.dir.path();
        let write = |name: &str, text: String| {
            std::fs::write(self.path(name), text).map_err(|source| Error::Io {
                what: "writing the private cluster's files",
                source,
            })
        };
        write("pwfile", format!("{}\n", self.password))?;
        write(
            "userlist.txt",
            format!("\"{USER}\" \"{}\"\n", self.password),
        )?;
        write(
            "pgbouncer.ini",
            format!(
                "[databases]\n\
                 * = host=127.0.0.1 port={pg_port}\n\
                 \n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {bouncer_port}\n\
                 unix_socket_dir =\n\
                 auth_type = scram-sha-256\n\
                 auth_file = {dir}/userlist.txt\n\
                 pool_mode = transaction\n\
                 max_client_conn = 200\n\
                 default_pool_size = 10\n\
                 max_db_connections = 20\n\
                 ; retry the server every second, not every 15 s, after it was down\n\
                 server_login_retry = 1\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {dir}/pgbouncer.log\n\
                 pidfile = {dir}/pgbouncer.pid\n",
                pg_port = self.pg_port,
                bouncer_port = self.bouncer_port,
                dir = dir.display(),
            ),
        )?;
        if self.as_system_user {
            let status = Command::new("chown")
                .args(["-R", &format!("{SYSTEM_USER}:")])
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|source| Error::Io {
                    what: "running chown",
                    source,
                })?;
            check("handing the private cluster's folder over", &status, "")?;
        }
        Ok(())
    }

    /// Two authorities, and a certificate for [`SERVER_NAME`] signed by the
    /// first, its key readable by its owner only (PostgreSQL insists).
    fn make_certificates(&self, openssl: &Path) -> Result<TlsFiles> {
        let run = |what: &'static str, args: &[&str]| {
            let output = Command::new(openssl)
                .args(args)
                .current_dir(self.dir.path())
                .stdin(Stdio::null())
                .output()
                .map_err(|source| Error::Io {
                    what: "running openssl",
                    source,
                })?;
            check(what, &output, "")
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (name, subject) in [
            ("root", "/CN=BigBrotr test authority"),
            ("unrelated", "/CN=BigBrotr unrelated test authority"),
        ] {
            let (keyout, out) = (format!("{name}.key"), format!("{name}.crt"));
            let mut args = vec!["req", "-x509"];
            args.extend(key);
            args.extend([
                "-keyout", &keyout, "-out", &out, "-days", "2", "-subj", subject,
            ]);
            run("making a test certificate authority", &args)?;
        }
        std::fs::write(
            self.path("server.ext"),
            format!(
                "subjectAltName = DNS:{SERVER_NAME}\n\
                 basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature, keyEncipherment\n\
                 extendedKeyUsage = serverAuth\n"
            ),
        )
        .map_err(|source| Error::Io {
            what: "writing the server certificate's extensions",
            source,
        })?;
        let mut args = vec!["req"];
        args.extend(key);
        args.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=BigBrotr test server",
        ]);
        run("making the server's key", &args)?;
        run(
            "signing the server's certificate",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "root.crt",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        )?;
        std::fs::set_permissions(
            self.path("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(|source| Error::Io {
            what: "restricting the server key's permissions",
            source,
        })?;
        Ok(TlsFiles {
            root_certificate: self.path("root.crt"),
            unrelated_root_certificate: self.path("unrelated.crt"),
            server_name: SERVER_NAME,
        })
    }

    fn initdb(&self) -> Result<()> {
        let data = self.path("data");
        let pwfile = self.path("pwfile");
        let output = self.run(
            &self.programs.initdb,
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-U"),
                OsStr::new(USER),
                OsStr::new("--pwfile"),
                pwfile.as_os_str(),
                OsStr::new("-A"),
                OsStr::new("scram-sha-256"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
                OsStr::new("--locale=C.UTF-8"),
                OsStr::new("--no-sync"),
            ],
        )?;
        check("initdb", &output, "")?;
        let _ = std::fs::remove_file(&pwfile);
        let tls = if self.tls.is_some() {
            format!(
                "ssl = on\n\
                 ssl_cert_file = '{dir}/server.crt'\n\
                 ssl_key_file = '{dir}/server.key'\n",
                dir = self.dir.path().display()
            )
        } else {
            String::new()
        };
        let settings = format!(
            "\n# Private test cluster\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{dir}'\n\
             max_connections = 40\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             password_encryption = 'scram-sha-256'\n\
             log_min_messages = warning\n\
             {tls}",
            port = self.pg_port,
            dir = self.dir.path().display(),
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut file| std::io::Write::write_all(&mut file, settings.as_bytes()))
            .map_err(|source| Error::Io {
                what: "writing postgresql.conf",
                source,
            })
    }

    fn start_postgres(&self) -> Result<()> {
        let log = self.path("postgresql.log");
        let log = log.to_string_lossy();
        self.pg_ctl(
            "starting PostgreSQL",
            &["start", "-t", "60", "-l", log.as_ref()],
        )
    }

    fn stop_postgres(&self) -> Result<()> {
        self.pg_ctl("stopping PostgreSQL", &["stop", "-m", "fast", "-t", "60"])
    }

    /// Runs `pg_ctl -D data -w -s ARGS`; a `start` always has `-l`, so the
    /// server never holds the pipes this reads to their end.
    fn pg_ctl(&self, what: &'static str, args: &[&str]) -> Result<()> {
        let data = self.path("data");
        let mut all = vec![
            OsStr::new("-D"),
            data.as_os_str(),
            OsStr::new("-w"),
            OsStr::new("-s"),
        ];
        all.extend(args.iter().map(OsStr::new));
        let output = self.run(&self.programs.pg_ctl, all)?;
        check(what, &output, &tail(&self.path("postgresql.log")))
    }

    fn start_pgbouncer(&self) -> Result<()> {
        let ini = self.path("pgbouncer.ini");
        // `-d` makes it a daemon that closes its standard streams.
        let output = self.run(
            &self.programs.pgbouncer,
            [OsStr::new("-d"), OsStr::new("-q"), ini.as_os_str()],
        )?;
        check(
            "starting PgBouncer",
            &output,
            &tail(&self.path("pgbouncer.log")),
        )?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.bouncer_port));
        wait_until("PgBouncer did not accept connections", || {
            TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
        })
    }

    fn stop_pgbouncer(&self) -> Result<()> {
        let pidfile = self.path("pgbouncer.pid");
        let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        else {
            return Ok(());
        };
        let output = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Io {
                what: "running kill",
                source,
            })?;
        if output.status.success() {
            wait_until("PgBouncer did not stop", || !process_runs(pid))?;
        }
        // A daemon nobody reaps stays a zombie, which a new PgBouncer would
        // take for a running one if the file were left.
        let _ = std::fs::remove_file(&pidfile);
        Ok(())
    }

    /// Runs `program` (as [`SYSTEM_USER`] when the tests run as root) and
    /// collects what it printed.
    fn run<'a>(&self, program: &Path, args: impl IntoIterator<Item = &'a OsStr>) -> Result<Output> {
        let mut command = if self.as_system_user {
            let mut command = Command::new("runuser");
            command.args(["-u", SYSTEM_USER, "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Io {
                what: "running a PostgreSQL or PgBouncer program",
                source,
            })
    }
}

impl Programs {
    /// Finds the programs where `scripts/dev-db.sh` looks for them.
    fn find() -> Result<Self> {
        Ok(Self {
            initdb: postgres_program("initdb")?,
            pg_ctl: postgres_program("pg_ctl")?,
            pgbouncer: search_path("pgbouncer")
                .or_else(|| executable(PathBuf::from("/usr/sbin/pgbouncer")))
                .ok_or(Error::MissingProgram { name: "pgbouncer" })?,
        })
    }
}

/// `name` in `pg_config --bindir`, else in the newest
/// `/usr/lib/postgresql/*/bin`, else on `PATH`.
fn postgres_program(name: &'static str) -> Result<PathBuf> {
    let bindir = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(found) = bindir.and_then(|dir| executable(dir.join(name))) {
        return Ok(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin").join(name)))
        })
        .collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find_map(|(_, path)| executable(path))
        .or_else(|| search_path(name))
        .ok_or(Error::MissingProgram { name })
}

fn search_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).find_map(|dir| executable(dir.join(name)))
}

fn executable(path: PathBuf) -> Option<PathBuf> {
    let meta = std::fs::metadata(&path).ok()?;
    (meta.is_file() && meta.mode() & 0o111 != 0).then_some(path)
}

/// A port of 127.0.0.1 free a moment ago.
fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| Error::Io {
            what: "finding a free port",
            source,
        })
}

/// Whether process `pid` exists and is not a zombie.
fn process_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn wait_until(what: &'static str, mut done: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > READY_TIMEOUT {
            return Err(Error::NotReady {
                what,
                after: READY_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// An error unless the command succeeded; its output and `log` explain it.
fn check(what: &'static str, output: &Output, log: &str) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    for part in [stdout.trim(), log.trim()] {
        if !part.is_empty() {
            text.push('\n');
            text.push_str(part);
        }
    }
    Err(Error::Command {
        what,
        status: output.status,
        output: text,
    })
}

/// The last lines of a log file, or nothing.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
