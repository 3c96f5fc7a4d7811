//! The server as a function: bound listeners, settings and a shutdown signal in; shard
//! threads out, until shutdown has drained every connection.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tessera_sync::Slots;
use tokio::sync::{watch, Barrier};

use crate::config::Config;
use crate::net::connection::{self, ClientSlot};
use crate::shard::mesh::Mesh;
use crate::shard::output::Wire;
use crate::shard::{NodeInfo, Shard};
use crate::startup;
use tessera_protocol::resp::RespVersion;

/// Binds one listening socket per shard on the same address with SO_REUSEPORT, so the
/// kernel spreads new connections over the shards. Port 0 is first resolved to a free
/// port; a port in use (by another server) is refused rather than shared.
///
/// # Errors
/// Any failure to create, configure or bind a socket.
pub fn bind(address: SocketAddr, shards: usize) -> io::Result<Vec<TcpListener>> {
    let mut address = address;
    if address.port() == 0 {
        // A port picked for a SO_REUSEPORT socket may be one another such socket of this
        // user already holds; one picked without it is free.
        let probe = Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        probe.bind(&address.into())?;
        let picked = probe.local_addr()?.as_socket().map_or(0, |a| a.port());
        address.set_port(picked);
    }
    if address.port() != 0 {
        // SO_REUSEPORT would let this server share the port with one already running
        // there, each taking a random half of the connections: make sure nobody holds it.
        let probe = Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        probe.set_reuse_address(true)?;
        probe.bind(&address.into()).map_err(|error| {
            if error.kind() == io::ErrorKind::AddrInUse {
                io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{address} is already in use (another server?)"),
                )
            } else {
                error
            }
        })?;
        drop(probe);
    }
    let mut listeners = Vec::with_capacity(shards);
    for _ in 0..shards {
        let socket = Socket::new(
            Domain::for_address(address),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_tcp_nodelay(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&address.into())?;
        socket.listen(1024)?;
        let listener: TcpListener = socket.into();
        address = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Descriptors kept back from clients: listeners, the runtimes' own, log segments and
/// snapshots being written, per shard, and a few for the process.
fn reserved_descriptors(shards: u16) -> u64 {
    32 + 4 * u64::from(shards)
}

/// `maxclients`, lowered (with a warning) so every client it admits can get a descriptor:
/// past the process's open-file limit a connection would wait in the kernel's backlog,
/// never answered, where one past `maxclients` is told MAX_CLIENTS.
fn fit_to_descriptors(maxclients: usize, shards: u16) -> usize {
    let Some(limit) = open_file_limit() else {
        return maxclients;
    };
    let room = limit.saturating_sub(reserved_descriptors(shards)).max(1) as usize;
    if maxclients > room {
        tracing::warn!(
            maxclients,
            lowered_to = room,
            open_file_limit = limit,
            "maxclients lowered to fit the open-file limit; raise the limit (ulimit -n) to admit more clients"
        );
        return room;
    }
    maxclients
}

/// The process's soft limit on open files, from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The node's maxmemory: the configured bytes, or, by default, 90% of what the machine (or
/// the cgroup the server runs in) has, so the kernel's OOM killer is never the limit.
fn maxmemory(config: &Config) -> u64 {
    if config.maxmemory > 0 {
        return config.maxmemory;
    }
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
                .map(|kib| kib * 1024)
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    let available = match (machine, cgroup) {
        (Some(machine), Some(cgroup)) => machine.min(cgroup),
        (machine, cgroup) => machine.or(cgroup).unwrap_or(u64::MAX / 2),
    };
    let derived = available / 10 * 9;
    tracing::debug!(maxmemory = derived, "maxmemory derived from the machine");
    derived
}

/// The sockets a node serves on, one per shard for each port.
pub struct Listeners {
    /// Tessera's own protocol.
    pub native: Vec<TcpListener>,
    /// RESP, for Redis clients; empty when it is off.
    pub resp: Vec<TcpListener>,
    /// Prometheus metrics over HTTP, served by shard 0; `None` when they are off.
    pub metrics: Option<TcpListener>,
}

/// Called once every shard has loaded its data and serves.
pub type Ready = Box<dyn FnOnce() + Send>;

/// Runs the server on `listeners` (one per shard) until `shutdown` turns true, then stops
/// accepting, lets in-flight requests finish, closes every connection and returns.
/// With `appendonly`, each shard first loads what the data folder holds; `ready` runs
/// once all have.
///
/// # Errors
/// A shard thread could not start or its runtime could not be built; the data folder is
/// in use by another server, or cannot be read or loaded.
pub fn run(
    listeners: Listeners,
    config: &Config,
    shutdown: watch::Receiver<bool>,
    ready: Ready,
) -> io::Result<()> {
    let Listeners {
        native,
        resp,
        mut metrics,
    } = listeners;
    let shards = u16::try_from(native.len()).map_err(|_| io::Error::other("too many shards"))?;
    if shards == 0 {
        return Err(io::Error::other("at least one listener is required"));
    }
    if !resp.is_empty() && resp.len() != native.len() {
        return Err(io::Error::other(
            "the RESP port needs one listener per shard",
        ));
    }
    let bound = native[0].local_addr()?;
    let port = bound.port();
    let resp_port = match resp.first() {
        Some(listener) => listener.local_addr()?.port(),
        None => 0,
    };
    let maxclients = fit_to_descriptors(config.maxclients, shards);
    let cluster = if config.cluster_enabled {
        Some(start_cluster(config, bound, shards, resp_port)?)
    } else {
        None
    };
    let node_id = match &cluster {
        Some(cluster) if config.node_id == Config::default().node_id => {
            format!("node-{}", cluster.id)
        }
        _ => config.node_id.clone(),
    };
    let node = Arc::new(NodeInfo {
        node_id,
        shards,
        port,
        resp_port,
        started: Instant::now(),
        max_frame_bytes: config.max_frame_bytes,
        max_push_buffer_bytes: config.max_push_buffer_bytes,
        repl_backlog_bytes: config.repl_backlog_size,
        maxclients,
        shutdown_timeout: std::time::Duration::from_secs_f64(config.shutdown_timeout),
        idle_timeout: (config.timeout > 0.0)
            .then(|| std::time::Duration::from_secs_f64(config.timeout)),
        frame_timeout: std::time::Duration::from_secs_f64(config.frame_timeout),
        max_output_buffer_bytes: config.max_output_buffer_bytes,
        maxmemory: maxmemory(config) as usize,
        eviction: config.maxmemory_policy,
        acl: Arc::new(config.acl().map_err(io::Error::other)?),
        tls: crate::net::tls::server_config(config)?,
        cluster,
        encoding_settings: Default::default(),
        subscriptions: Default::default(),
        notify_flags: Default::default(),
        thresholds: crate::diagnostics::Thresholds::new(
            config.slowlog_log_slower_than,
            config.slowlog_max_len,
            config.latency_monitor_threshold,
        ),
    });
    let persistence = if config.appendonly {
        Some(startup::prepare(config, shards)?)
    } else {
        None
    };
    let settings = persistence.as_ref().map(|p| p.settings.clone());
    let protected = config.protected_mode && !config.bind.is_loopback();
    if protected && node.acl.default_is_open() {
        tracing::warn!(bind = %config.bind, "protected mode: bound beyond loopback with no password, so only loopback clients are served (set --requirepass, or --protected-mode no to serve all)");
    }
    let mesh = Arc::new(Mesh::new(shards));
    let slots = Arc::new(Slots::new(maxclients));
    let all_drained = Arc::new(Barrier::new(usize::from(shards)));
    let loading = Arc::new(startup::Loading::new(shards, ready));
    let mut resp = resp.into_iter();
    let listeners: Vec<_> = native.into_iter().map(|n| (n, resp.next())).collect();
    let threads = listeners
        .into_iter()
        .enumerate()
        .map(|(id, listener)| {
            let metrics = if id == 0 { metrics.take() } else { None };
            let (node, mesh, slots, all_drained, shutdown, settings, loading) = (
                node.clone(),
                mesh.clone(),
                slots.clone(),
                all_drained.clone(),
                shutdown.clone(),
                settings.clone(),
                loading.clone(),
            );
            std::thread::Builder::new()
                .name(format!("shard-{id}"))
                .spawn(move || {
                    let id = id as u16;
                    let loaded = startup::load(settings.as_ref(), id, shards);
                    let (keyspace, durability) = loading.all_loaded(id, loaded)?;
                    let shard = Rc::new(Shard::new(id, node, mesh, keyspace, durability));
                    let serving = Serving {
                        slots,
                        all_drained,
                        protected,
                        metrics,
                    };
                    run_shard(shard, listener, serving, shutdown)
                })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut result = Ok(());
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => result = Err(error),
            Err(_) => result = Err(io::Error::other("a shard thread panicked")),
        }
    }
    result
}

/// Starts the node's cluster member: its bus on `--cluster-bus-port` (the client port +
/// 10000 by default, as Redis Cluster does) and its Raft log under the data folder.
fn start_cluster(
    config: &Config,
    bound: SocketAddr,
    shards: u16,
    resp_port: u16,
) -> io::Result<Arc<crate::cluster::Cluster>> {
    let bus_port = match config.cluster_bus_port {
        0 => bound.port().checked_add(10_000).ok_or_else(|| {
            io::Error::other("the client port + 10000 is past 65535: set --cluster-bus-port")
        })?,
        port => port,
    };
    let bus_bind = SocketAddr::new(bound.ip(), bus_port);
    let addr_announce = if config.cluster_announce_addr.is_empty() {
        bound.to_string()
    } else {
        config.cluster_announce_addr.clone()
    };
    let announce_host = addr_announce
        .rsplit_once(':')
        .map_or(addr_announce.as_str(), |(host, _)| host);
    let cluster = crate::cluster::start(crate::cluster::Settings {
        id: config.cluster_node_id,
        bus_bind,
        bus_announce: format!("{announce_host}:{bus_port}"),
        resp_announce: match resp_port {
            0 => String::new(),
            port => format!("{announce_host}:{port}"),
        },
        addr_announce,
        shards,
        dir: config.dir.clone(),
        peer_client: tessera_client::ClientConfig {
            username: Some(config.cluster_user.clone()).filter(|u| !u.is_empty()),
            password: Some(config.cluster_pass.clone()).filter(|p| !p.is_empty()),
            ..tessera_client::ClientConfig::default()
        },
    })?;
    tracing::info!(id = cluster.id, bus = %bus_bind, "cluster member started");
    Ok(cluster)
}

/// Whether a client from `peer` may connect: in protected mode (bound beyond loopback,
/// with no password to ask for: the default user is on with `nopass`) only loopback
/// clients are served.
pub fn admits(protected: bool, peer: std::net::IpAddr) -> bool {
    !protected || peer.is_loopback()
}

/// What a client refused by protected mode is told.
const PROTECTED_MODE: &str = "protected mode: this server is bound beyond loopback and has no password, so it serves loopback clients only; set a password (--requirepass, or ACL.SETUSER default >password from loopback), bind it to 127.0.0.1, or start it with --protected-mode no once the network is trusted";

/// Accepts on `listener`, or never when there is none.
async fn accept_if(
    listener: Option<&tokio::net::TcpListener>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Who may connect: protected mode's rule and the `maxclients` slots.
struct Admission {
    slots: Arc<Slots>,
    protected: bool,
}

impl Admission {
    /// Serves a connection just accepted, or refuses it saying why.
    fn admit(&self, shard: &Rc<Shard>, stream: tokio::net::TcpStream, peer: IpAddr, wire: Wire) {
        if !admits(self.protected && shard.node.acl.default_is_open(), peer) {
            shard.stats.borrow_mut().connections_rejected += 1;
            let refusal =
                tessera_protocol::Value::error(tessera_protocol::ErrorCode::Denied, PROTECTED_MODE);
            tokio::task::spawn_local(connection::refuse(stream, refusal, wire));
            return;
        }
        match ClientSlot::acquire(&self.slots) {
            Some(slot) => connection::accept(shard.clone(), stream, slot, wire),
            None => {
                shard.stats.borrow_mut().connections_rejected += 1;
                tokio::task::spawn_local(connection::reject(stream, wire));
            }
        }
    }
}

/// Failed accepts (out of descriptors and the like): counted, and logged once a second at
/// most, with a short back-off instead of a spin.
struct AcceptFailures {
    count: u64,
    last_logged: Instant,
}

impl Default for AcceptFailures {
    fn default() -> Self {
        AcceptFailures {
            count: 0,
            last_logged: Instant::now()
                .checked_sub(std::time::Duration::from_secs(1))
                .unwrap_or_else(Instant::now),
        }
    }
}

impl AcceptFailures {
    async fn note(&mut self, shard: &Shard, error: &io::Error) {
        self.count += 1;
        if self.last_logged.elapsed() >= std::time::Duration::from_secs(1) {
            tracing::warn!(shard = shard.id, %error, failures = self.count, "accept failed");
            self.count = 0;
            self.last_logged = Instant::now();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// What a shard thread serves with, besides its own listeners.
struct Serving {
    slots: Arc<Slots>,
    all_drained: Arc<Barrier>,
    protected: bool,
    /// The metrics listener, on shard 0 only.
    metrics: Option<TcpListener>,
}

fn run_shard(
    shard: Rc<Shard>,
    (listener, resp): (TcpListener, Option<TcpListener>),
    serving: Serving,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let Serving {
        slots,
        all_drained,
        protected,
        metrics,
    } = serving;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let resp = resp.map(tokio::net::TcpListener::from_std).transpose()?;
        if let Some(metrics) = metrics {
            metrics.set_nonblocking(true)?;
            let metrics = tokio::net::TcpListener::from_std(metrics)?;
            tokio::task::spawn_local(crate::diagnostics::metrics::serve(
                shard.clone(),
                metrics,
                protected,
            ));
        }
        tokio::task::spawn_local(shard.clone().run_inbox());
        tokio::task::spawn_local(shard.clone().run_expiry());
        tokio::task::spawn_local(shard.clone().run_flusher());
        tokio::task::spawn_local(shard.clone().run_log());
        tokio::task::spawn_local(shard.clone().run_everysec());
        tokio::task::spawn_local(shard.clone().run_snapshots());
        tokio::task::spawn_local(shard.clone().run_connection_timeouts());
        tokio::task::spawn_local(crate::route::replicate::follow(shard.clone()));
        tracing::debug!(shard = shard.id, "shard started");
        let mut failures = AcceptFailures::default();
        let admission = Admission { slots, protected };
        while !*shutdown.borrow() {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => admission.admit(&shard, stream, peer.ip(), Wire::Native),
                    Err(error) => failures.note(&shard, &error).await,
                },
                accepted = accept_if(resp.as_ref()) => match accepted {
                    Ok((stream, peer)) => {
                        admission.admit(&shard, stream, peer.ip(), Wire::Resp(RespVersion::Resp2));
                    }
                    Err(error) => failures.note(&shard, &error).await,
                },
                _ = shutdown.changed() => {}
            }
        }
        drop(resp);
        drop(listener);
        shard.drain_connections().await;
        // Other shards may still be waiting on this one's answers: keep serving the
        // mailboxes until every shard has drained its own connections.
        all_drained.wait().await;
        shard.close_log();
        tracing::debug!(shard = shard.id, "shard stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_admits_loopback_clients_only() {
        let remote: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        let v6_remote: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        for loopback in ["127.0.0.1", "127.9.9.9", "::1"] {
            assert!(admits(true, loopback.parse().unwrap()), "{loopback}");
        }
        assert!(!admits(true, remote));
        assert!(!admits(true, v6_remote));
        assert!(admits(false, remote), "protected mode off admits anyone");
    }
}
