//! The `junction` command line: `start`, `check`, `init`, `version`, `passwd`.
//!
//! Exit codes: 0 success, 64 invalid configuration (as `sysexits` EX_USAGE, like the house
//! style's `--check-config`), 1 any other failure (e.g. a port already in use).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing::{info, warn};

use crate::config::{self, NodeConfig};
use crate::node::Node;

/// Exit code for an invalid configuration.
pub const EXIT_CONFIG: u8 = 64;
/// How long sessions get to say GOODBYE and flush at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// junction: WAMP router and MQTT broker on one routing core.
#[derive(Debug, Parser)]
#[command(name = "junction", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the node.
    Start {
        /// Node directory holding config.json.
        #[arg(long, default_value = ".crossbar")]
        cbdir: PathBuf,
        /// Log level (error, warn, info, debug, trace) or a tracing filter; RUST_LOG wins if set.
        #[arg(long, default_value = "info")]
        loglevel: String,
    },
    /// Check the node configuration and report every problem.
    Check {
        /// Node directory holding config.json.
        #[arg(long, default_value = ".crossbar")]
        cbdir: PathBuf,
    },
    /// Write the built-in default configuration to the node directory.
    Init {
        /// Node directory to create.
        #[arg(long, default_value = ".crossbar")]
        cbdir: PathBuf,
    },
    /// Print the version.
    Version,
    /// Create or change a mosquitto password file, like `mosquitto_passwd`
    /// (PBKDF2-SHA512 `$7$` entries).
    Passwd {
        /// The password file.
        file: PathBuf,
        /// The user to add, update or delete.
        user: String,
        /// The password; without it, the first line of standard input (which must not be
        /// a terminal).
        #[arg(long)]
        password: Option<String>,
        /// Create the file with just this user, overwriting an existing file.
        #[arg(short = 'c')]
        create: bool,
        /// Delete the user.
        #[arg(short = 'D')]
        delete: bool,
    },
}

fn report(errors: &[config::ConfigError]) {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!("configuration invalid: {} problem(s)", errors.len());
}

/// The node directory's config (`None`: no `config.json`) with its warnings.
fn load(cbdir: &Path) -> Result<(Option<NodeConfig>, Vec<config::ConfigError>), ExitCode> {
    config::load_dir_with_warnings(cbdir).map_err(|errs| {
        report(&errs);
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Passwd {
            file,
            user,
            password,
            create,
            delete,
        } => passwd(&file, &user, password, create, delete),
        Command::Version => {
            println!("junction {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { cbdir } => match load(&cbdir) {
            Ok((Some(_), warnings)) => {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                println!("Ok, node configuration looks good!");
                ExitCode::SUCCESS
            }
            Ok((None, _)) => {
                eprintln!("no config.json in {}", cbdir.display());
                ExitCode::from(EXIT_CONFIG)
            }
            Err(code) => code,
        },
        Command::Init { cbdir } => {
            let file = cbdir.join("config.json");
            if file.exists() {
                eprintln!("{} already exists; not overwriting", file.display());
                return ExitCode::FAILURE;
            }
            if let Err(e) = std::fs::create_dir_all(&cbdir)
                .and_then(|()| std::fs::write(&file, config::default_config_json()))
            {
                eprintln!("cannot write {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", file.display());
            ExitCode::SUCCESS
        }
        Command::Start { cbdir, loglevel } => {
            init_tracing(&loglevel);
            let cfg = match load(&cbdir) {
                Ok((Some(c), warnings)) => {
                    info!(config = %cbdir.join("config.json").display(), "configuration loaded");
                    for w in &warnings {
                        warn!(path = %w.path, "{}", w.message);
                    }
                    c
                }
                Ok((None, _)) => {
                    info!(cbdir = %cbdir.display(), "no config.json found; using the built-in default (realm1, anonymous, ws://0.0.0.0:8080/ws)");
                    match config::parse_json(&config::default_config_json()) {
                        Ok(c) => c,
                        Err(errs) => {
                            report(&errs);
                            return ExitCode::from(EXIT_CONFIG);
                        }
                    }
                }
                Err(code) => return code,
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(run(cfg))
        }
    }
}

/// `junction passwd`: exit 0 on success, 1 with a message on stderr otherwise.
fn passwd(
    file: &Path,
    user: &str,
    password: Option<String>,
    create: bool,
    delete: bool,
) -> ExitCode {
    use crate::auth::mosquitto::{update_password_file, PasswdChange};
    let fail = |msg: &dyn std::fmt::Display| {
        eprintln!("junction passwd: {msg}");
        ExitCode::FAILURE
    };
    if create && delete {
        return fail(&"-c and -D cannot be used together");
    }
    if delete && password.is_some() {
        return fail(&"-D and --password cannot be used together");
    }
    let password = match (delete, password) {
        (true, _) => None,
        (false, Some(p)) => Some(p.into_bytes()),
        (false, None) => match read_password_from_stdin() {
            Ok(p) => Some(p),
            Err(e) => return fail(&e),
        },
    };
    let change = match (&password, create) {
        (None, _) => PasswdChange::Delete,
        (Some(p), true) => PasswdChange::Create { password: p },
        (Some(p), false) => PasswdChange::Set { password: p },
    };
    match update_password_file(file, user, change) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// The first line of standard input, without its line ending.
fn read_password_from_stdin() -> Result<Vec<u8>, String> {
    use std::io::{BufRead as _, IsTerminal as _};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err("no password: give --password or pipe it on standard input".into());
    }
    let mut line = Vec::new();
    let n = stdin
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    if n == 0 {
        return Err("no password on standard input".into());
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(line)
}

fn init_tracing(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cfg: NodeConfig) -> ExitCode {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let node = match Node::start(&cfg).await {
        Ok(n) => n,
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            tracing::error!(error = %e, %cause, "cannot start the node");
            return ExitCode::FAILURE;
        }
    };
    info!(version = env!("CARGO_PKG_VERSION"), "junction node started");
    signals.recv().await;
    let shutdown = node.shutdown(SHUTDOWN_GRACE);
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => ExitCode::SUCCESS,
        () = signals.recv() => {
            warn!("second signal: exiting now");
            ExitCode::from(130)
        }
    }
}

/// SIGTERM and SIGINT listeners, installed once so that one signal is seen once.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => info!(signal = "SIGTERM", "signal received"),
            _ = self.int.recv() => info!(signal = "SIGINT", "signal received"),
        }
    }
}
