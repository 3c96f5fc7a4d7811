//! `tessera-cli`: one-shot commands or an interactive prompt against a Tessera node.

use std::io::IsTerminal;
use std::process::ExitCode;
use tessera_protocol::PresenceCommand;

use bytes::Bytes;
use clap::Parser;

use tessera_client::{Client, ClientConfig, Connection, Error, TlsConfig};
use tessera_protocol::{Command, ErrorReply, Value, COMMANDS};
mod cluster;
mod live;
mod render;

use render::{error_json, render_human, render_raw, split_line, to_json};

/// Tessera's admin tool: `tessera-cli [-h HOST] [-p PORT] [--json] COMMAND ARGS...`
#[derive(Debug, Parser)]
#[command(version, about, disable_help_flag = true)]
struct Args {
    /// Server host.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short = 'p', long, default_value_t = tessera_protocol::DEFAULT_PORT)]
    port: u16,
    /// Password to authenticate with (HELLO with AUTH); also read from
    /// TESSERA_PASSWORD, which keeps it out of the process list.
    #[arg(
        short = 'a',
        long = "pass",
        env = "TESSERA_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// User to authenticate as, with --pass [default: default].
    #[arg(long)]
    user: Option<String>,
    /// Connect over TLS (with --cacert).
    #[arg(long)]
    tls: bool,
    /// PEM CA certificates the server's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,
    /// PEM client certificate to show the server (with --key).
    #[arg(long, value_name = "FILE")]
    cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    /// Name the server's certificate must carry [default: the host].
    #[arg(long, value_name = "NAME")]
    sni: Option<String>,
    /// Print replies as JSON.
    #[arg(long)]
    json: bool,
    /// Print values bare even at a terminal (the default when output is piped).
    #[arg(long)]
    raw: bool,
    /// With PRESENCE.WATCH: exit after this many pushes (default: until the connection
    /// closes or Ctrl-C).
    #[arg(long, value_name = "N")]
    pushes: Option<u64>,
    /// Print a line per interval of keys, memory, clients, ops/s, cross-shard hops/s
    /// and the interval's p99 (like redis-cli --stat).
    #[arg(long, conflicts_with = "latency")]
    stat: bool,
    /// Sample PING round trips every 10 ms and print their min, max and average (ms) each
    /// interval (like redis-cli --latency).
    #[arg(long)]
    latency: bool,
    /// Seconds between --stat and --latency lines.
    #[arg(short = 'i', long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    /// With --stat or --latency: exit after this many lines (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    lines: Option<u64>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Command and arguments; none opens the interactive prompt.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Clone, Copy)]
enum Style {
    Human,
    Raw,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let style = if args.json {
        Style::Json
    } else if args.raw || !std::io::stdout().is_terminal() {
        Style::Raw
    } else {
        Style::Human
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tessera-cli: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let address = format!("{}:{}", args.host, args.port);
    let tls = match tls_config(&args) {
        Ok(tls) => tls,
        Err(error) => {
            eprintln!("tessera-cli: {error}");
            return ExitCode::from(2);
        }
    };
    let config = ClientConfig {
        username: args.user.clone(),
        password: args.password.clone(),
        tls,
        ..ClientConfig::default()
    };
    runtime.block_on(async move {
        if args
            .command
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("cluster"))
        {
            return match cluster::run(&address, &config, &args.command[1..], style).await {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("(error) {error}");
                    ExitCode::FAILURE
                }
            };
        }
        let client = match Client::connect_with(&address, config.clone()).await {
            Ok(client) => client,
            Err(error) => {
                eprintln!("Could not connect to Tessera at {address}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let session = Session {
            client,
            config,
            address: address.clone(),
            style,
            pushes: args.pushes,
        };
        if args.stat || args.latency {
            let interval = std::time::Duration::from_secs_f64(args.interval.clamp(0.01, 3600.0));
            let ran = if args.stat {
                live::stat(&session.client, interval, args.lines).await
            } else {
                live::latency(&session.client, interval, args.lines).await
            };
            return match ran {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("(error) {error}");
                    ExitCode::FAILURE
                }
            };
        }
        if args.command.is_empty() {
            prompt(&session).await
        } else {
            let words = args
                .command
                .iter()
                .map(|w| Bytes::from(w.clone()))
                .collect::<Vec<_>>();
            if run(&session, &words).await {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    })
}

/// The TLS settings the flags ask for.
fn tls_config(args: &Args) -> Result<Option<TlsConfig>, String> {
    if !args.tls {
        return match (&args.cacert, &args.cert) {
            (None, None) => Ok(None),
            _ => Err("--cacert and --cert need --tls".into()),
        };
    }
    let ca = args.cacert.as_deref().ok_or("--tls needs --cacert")?;
    let identity = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    let tls = TlsConfig::from_pem_files(ca, identity).map_err(|error| error.to_string())?;
    Ok(Some(match &args.sni {
        Some(name) => tls.with_server_name(name),
        None => tls,
    }))
}

/// What every command of one invocation shares.
#[derive(Clone)]
struct Session {
    client: Client,
    config: ClientConfig,
    address: String,
    style: Style,
    pushes: Option<u64>,
}

/// Runs one command and prints its reply; `false` if it ended in an error.
async fn run(session: &Session, words: &[Bytes]) -> bool {
    let style = session.style;
    let joined = joined_subcommand(words);
    let words = joined.as_deref().unwrap_or(words);
    let reply = match Command::parse_words(words) {
        Ok(command @ Command::Presence(PresenceCommand::Watch(_))) => {
            return watch(session, command).await
        }
        Ok(command) => session.client.call(command).await,
        Err(refused) => Err(Error::Server(refused)),
    };
    report(reply, style)
}

/// `SLOWLOG GET 10` as `SLOWLOG.GET 10` (and any `NAME SUB` whose `NAME.SUB` is a
/// command), so Redis habits work at the prompt.
fn joined_subcommand(words: &[Bytes]) -> Option<Vec<Bytes>> {
    let [name, sub, rest @ ..] = words else {
        return None;
    };
    let joined = format!(
        "{}.{}",
        String::from_utf8_lossy(name),
        String::from_utf8_lossy(sub)
    )
    .to_ascii_uppercase();
    COMMANDS.iter().find(|spec| spec.name == joined)?;
    Some(
        std::iter::once(Bytes::from(joined))
            .chain(rest.iter().cloned())
            .collect(),
    )
}

/// PRESENCE.WATCH on a connection of its own, like redis-cli's SUBSCRIBE: prints the
/// baseline, then each push as it arrives.
async fn watch(session: &Session, command: Command) -> bool {
    let opened = Connection::open_with_pushes(&session.address, None, &session.config).await;
    let (connection, mut pushes) = match opened {
        Ok(opened) => opened,
        Err(error) => return report(Err(error), session.style),
    };
    if !report(connection.request(command).await, session.style) {
        return false;
    }
    let mut printed = 0;
    while session.pushes.is_none_or(|limit| printed < limit) {
        tokio::select! {
            push = pushes.recv() => match push {
                Some(push) => {
                    print(&push, session.style);
                    printed += 1;
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    true
}

/// Prints a reply or error; `false` for an error.
fn report(reply: Result<Value, Error>, style: Style) -> bool {
    match reply {
        Ok(value) => {
            print(&value, style);
            true
        }
        Err(Error::Server(reply)) => {
            print_error(&reply, style);
            false
        }
        Err(error) => {
            match style {
                Style::Json => println!(
                    "{}",
                    serde_json::json!({ "error": { "message": error.to_string() } })
                ),
                _ => eprintln!("(error) {error}"),
            }
            false
        }
    }
}

fn print(value: &Value, style: Style) {
    match style {
        Style::Human => println!("{}", render_human(value)),
        Style::Raw => println!("{}", render_raw(value)),
        Style::Json => println!("{}", to_json(value)),
    }
}

fn print_error(reply: &ErrorReply, style: Style) {
    match style {
        Style::Json => println!("{}", error_json(reply)),
        _ => println!("(error) {reply}"),
    }
}

async fn prompt(session: &Session) -> ExitCode {
    let (address, style) = (&session.address, session.style);
    let Ok(mut editor) = rustyline::DefaultEditor::new() else {
        eprintln!("tessera-cli: cannot open the prompt");
        return ExitCode::FAILURE;
    };
    let history = std::env::var_os("HOME")
        .map(|home| std::path::PathBuf::from(home).join(".tessera_cli_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let style = match style {
        Style::Raw if !std::io::stdout().is_terminal() => Style::Raw,
        Style::Json => Style::Json,
        _ => Style::Human,
    };
    let session = Session {
        style,
        ..session.clone()
    };
    loop {
        let line = match editor.readline(&format!("{address}> ")) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if trimmed.eq_ignore_ascii_case("quit") || trimmed.eq_ignore_ascii_case("exit") {
            break;
        }
        if trimmed.eq_ignore_ascii_case("help") {
            for spec in COMMANDS {
                println!("{:<10} {:<50} {}", spec.name, spec.syntax, spec.summary);
            }
            continue;
        }
        match split_line(trimmed) {
            Ok(words) => {
                run(&session, &words).await;
            }
            Err(message) => println!("(error) {message}"),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    ExitCode::SUCCESS
}
