//! `tessera-server`: flags and an optional config file in, a running server out.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tessera_server::config::Config;
use tessera_server::server;
use tokio::sync::watch;

/// Tessera: an in-memory data server for real-time marketplaces.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML file with any of the settings below (flags win over the file).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Port to listen on; 0 picks a free port [default: 7379].
    #[arg(long, short = 'p')]
    port: Option<u16>,
    /// Also serve Redis clients (RESP2 and RESP3): yes or no [default: yes].
    #[arg(long, value_parser = yes_no)]
    resp: Option<bool>,
    /// The RESP port; 0 picks a free port. When the default is taken (by a Redis), RESP
    /// stays off with a warning [default: 6379].
    #[arg(long)]
    resp_port: Option<u16>,
    /// Serve Prometheus metrics over HTTP (`/metrics`): yes or no [default: yes].
    #[arg(long, value_parser = yes_no)]
    metrics: Option<bool>,
    /// The metrics port; 0 picks a free port. When the default is taken, metrics stay
    /// off with a warning [default: 9379].
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Microseconds past which a request goes in the slow log; negative: none does
    /// [default: 10000].
    #[arg(long, allow_hyphen_values = true)]
    slowlog_log_slower_than: Option<i64>,
    /// Slow log entries each shard keeps [default: 128].
    #[arg(long)]
    slowlog_max_len: Option<usize>,
    /// Milliseconds from which the latency monitor keeps an event (LATENCY LATEST);
    /// 0: off [default: 0].
    #[arg(long)]
    latency_monitor_threshold: Option<u64>,
    /// Shards (one thread each) [default: one per core].
    #[arg(long)]
    shards: Option<usize>,
    /// Most client connections at once [default: 10000].
    #[arg(long)]
    maxclients: Option<usize>,
    /// Largest request frame in bytes [default: 16777216].
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Push bytes a connection may leave unread before it is closed [default: 33554432].
    #[arg(long)]
    max_push_buffer_bytes: Option<usize>,
    /// Change-stream bytes each shard keeps for replicas that fall behind [default: 16777216].
    #[arg(long)]
    repl_backlog_size: Option<usize>,
    /// Log filter, e.g. `info`, `debug`, `tessera_server=trace` [default: info].
    #[arg(long)]
    log_level: Option<String>,
    /// Node identifier reported to clients [default: node-1].
    #[arg(long)]
    node_id: Option<String>,
    /// Log every change and snapshot under --dir, so data survives restarts: yes or no
    /// [default: yes].
    #[arg(long, value_parser = yes_no)]
    appendonly: Option<bool>,
    /// Data folder for logs and snapshots [default: tessera-data].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// When the log reaches the disk: always (before each reply), everysec, or no (the
    /// OS decides) [default: everysec].
    #[arg(long)]
    appendfsync: Option<tessera_server::config::Fsync>,
    /// Log bytes since the last snapshot that start a new one; 0: only SNAPSHOT does
    /// [default: 67108864].
    #[arg(long)]
    snapshot_after_bytes: Option<u64>,
    /// Start even if a log is damaged before its end, cutting it there: every change
    /// after the damage is lost.
    #[arg(long)]
    repair_log: bool,
    /// Seconds shutdown waits for clients to take their last replies before closing
    /// them anyway [default: 10].
    #[arg(long)]
    shutdown_timeout: Option<f64>,
    /// Seconds a connection may sit idle (no request, no reply owed, no watch) before it
    /// is closed; 0: never [default: 300].
    #[arg(long)]
    timeout: Option<f64>,
    /// Seconds a frame may take to arrive once its first byte has [default: 30].
    #[arg(long)]
    frame_timeout: Option<f64>,
    /// Reply bytes a connection may have waiting before its next requests wait for the
    /// client to read [default: 67108864].
    #[arg(long)]
    max_output_buffer_bytes: Option<usize>,
    /// Bytes of data the node may hold before writes that add data are refused with OOM
    /// (reads and deletes go on); 0: 90% of the machine's memory [default: 0].
    #[arg(long)]
    maxmemory: Option<u64>,
    /// Which keys go at maxmemory: noeviction (writes get OOM), allkeys-lru, allkeys-lfu,
    /// allkeys-random, volatile-lru, volatile-lfu, volatile-ttl or volatile-random
    /// [default: noeviction].
    #[arg(long)]
    maxmemory_policy: Option<tessera_server::data::keyspace::Policy>,
    /// Bound beyond loopback with no password, serve loopback clients only: yes or no
    /// [default: yes].
    #[arg(long, value_parser = yes_no)]
    protected_mode: Option<bool>,
    /// Password for the default user; connections must then AUTH (or HELLO with AUTH).
    #[arg(long, env = "TESSERA_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
    /// An ACL user, as redis.conf's `user` lines: `NAME RULE...`, e.g.
    /// `--user "reader on >pw ~cache:* +@read"`; repeat for more (added to the file's).
    #[arg(long, value_name = "RULES")]
    user: Vec<String>,
    /// PEM certificate chain; with --tls-key-file, every client connection speaks TLS.
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key for --tls-cert-file.
    #[arg(long)]
    tls_key_file: Option<PathBuf>,
    /// PEM CA certificates that client certificates are checked against.
    #[arg(long)]
    tls_ca_cert_file: Option<PathBuf>,
    /// With --tls-ca-cert-file: yes (a client must show a valid certificate) or optional
    /// [default: yes].
    #[arg(long)]
    tls_auth_clients: Option<tessera_server::config::TlsAuthClients>,
    /// Run as a member of a cluster (formed with CLUSTER.CREATE, or `tessera-cli cluster
    /// create`): yes or no [default: no].
    #[arg(long, value_parser = yes_no)]
    cluster_enabled: Option<bool>,
    /// This node's cluster id, at least 1, unique and never reused [default: 1].
    #[arg(long)]
    cluster_node_id: Option<u64>,
    /// Port of the cluster bus (Raft between nodes); 0: the client port + 10000
    /// [default: 0].
    #[arg(long)]
    cluster_bus_port: Option<u16>,
    /// The `host:port` clients and peers are told to reach this node at; empty: the bound
    /// address and port [default: empty].
    #[arg(long)]
    cluster_announce_addr: Option<String>,
    /// The user this node authenticates as on other nodes (slot migration, multi-key
    /// commands split across nodes); empty: the default user [default: empty].
    #[arg(long)]
    cluster_user: Option<String>,
    /// That user's password; empty: none is sent [default: empty].
    #[arg(long)]
    cluster_pass: Option<String>,
}

fn yes_no(text: &str) -> Result<bool, String> {
    match text {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("expected yes or no, not {text:?}")),
    }
}

impl Args {
    fn into_config(self) -> Result<Config, tessera_server::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! apply {
            ($($field:ident),*) => {$( if let Some(v) = self.$field { config.$field = v; } )*};
        }
        apply!(
            bind,
            port,
            resp,
            resp_port,
            shards,
            maxclients,
            max_frame_bytes,
            max_push_buffer_bytes,
            repl_backlog_size,
            log_level,
            node_id,
            appendonly,
            dir,
            appendfsync,
            snapshot_after_bytes,
            shutdown_timeout,
            timeout,
            frame_timeout,
            max_output_buffer_bytes,
            maxmemory,
            maxmemory_policy,
            protected_mode,
            requirepass,
            tls_cert_file,
            tls_key_file,
            tls_ca_cert_file,
            tls_auth_clients,
            cluster_enabled,
            cluster_node_id,
            cluster_bus_port,
            cluster_announce_addr,
            cluster_user,
            cluster_pass,
            metrics,
            metrics_port,
            slowlog_log_slower_than,
            slowlog_max_len,
            latency_monitor_threshold
        );
        config.user.extend(self.user);
        if self.repair_log {
            config.repair_log = true;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let config = match Args::parse().into_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tessera-server: {error}");
            return ExitCode::from(2);
        }
    };
    // Raft's own logs report every missed heartbeat to a down peer, several a second;
    // the cluster module logs what an operator needs (leader changes, peers lost and
    // found). `--log-level openraft=debug` (or any filter naming openraft) brings them back.
    let level = if config.log_level.contains("openraft") {
        config.log_level.clone()
    } else {
        format!("{},openraft=off", config.log_level)
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let shards = config.shard_count();
    let listeners = match server::bind(SocketAddr::new(config.bind, config.port), shards) {
        Ok(listeners) => listeners,
        Err(error) => {
            tracing::error!(%error, bind = %config.bind, port = config.port, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let resp = if config.resp {
        match server::bind(SocketAddr::new(config.bind, config.resp_port), shards) {
            Ok(listeners) => listeners,
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && config.resp_port == tessera_server::config::DEFAULT_RESP_PORT =>
            {
                tracing::warn!(%error, port = config.resp_port, "the default RESP port is taken (a Redis?): Redis clients are not served; set --resp-port");
                Vec::new()
            }
            Err(error) => {
                tracing::error!(%error, bind = %config.bind, port = config.resp_port, "cannot listen for RESP");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Vec::new()
    };
    let metrics = if config.metrics {
        let address = SocketAddr::new(config.bind, config.metrics_port);
        match std::net::TcpListener::bind(address) {
            Ok(listener) => Some(listener),
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && config.metrics_port == tessera_server::config::DEFAULT_METRICS_PORT =>
            {
                tracing::warn!(%error, port = config.metrics_port, "the default metrics port is taken: metrics are not served; set --metrics-port");
                None
            }
            Err(error) => {
                tracing::error!(%error, %address, "cannot listen for metrics");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let metrics_address = metrics.as_ref().and_then(|l| l.local_addr().ok());
    let address = listeners[0]
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let resp_address = resp.first().and_then(|l| l.local_addr().ok());
    let ready = Box::new(move || {
        tracing::info!(%address, shards, "tessera listening");
        // One plain line on stdout, once the data is loaded, so scripts and tests started
        // with --port 0 learn the port and know the server is ready.
        // The RESP line goes in the same write, so a reader of the first finds both; a
        // reader gone already is no reason to stop.
        let mut lines = format!("listening on {address}\n");
        if let Some(resp) = resp_address {
            lines.push_str(&format!("resp listening on {resp}\n"));
        }
        if let Some(metrics) = metrics_address {
            lines.push_str(&format!("metrics listening on {metrics}\n"));
        }
        let _ = std::io::stdout().write_all(lines.as_bytes());
        let _ = std::io::stdout().flush();
    });

    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(signals) = signals else {
        tracing::error!("cannot start the signal handler");
        return ExitCode::FAILURE;
    };
    // Handlers go in before the server starts, so no signal can find the default action:
    // SIGTERM right after `listening` still shuts down cleanly, and a log write past the
    // file-size limit fails with an error the server answers (writes refused, reads
    // served) instead of SIGXFSZ ending the process.
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        let _entered = signals.enter();
        #[cfg(target_os = "linux")]
        let file_size = signal(SignalKind::from_raw(25));
        #[cfg(not(target_os = "linux"))]
        let file_size = signal(SignalKind::user_defined2());
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            file_size,
        ) {
            (Ok(interrupt), Ok(terminate), Ok(file_size)) => (interrupt, terminate, file_size),
            _ => {
                tracing::error!("cannot install signal handlers");
                return ExitCode::FAILURE;
            }
        }
    };
    let (stop, stopped) = watch::channel(false);
    let (ended, server_ended) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let listeners = server::Listeners {
            native: listeners,
            resp,
            metrics,
        };
        let result = server::run(listeners, &config, stopped, ready);
        let _ = ended.send(());
        result
    });
    let (mut interrupt, mut terminate, _file_size) = handlers;
    signals.block_on(async {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = server_ended => {}
        }
    });
    let _ = stop.send(true);
    match server.join() {
        Ok(Ok(())) => {
            tracing::info!("shut down cleanly");
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}
