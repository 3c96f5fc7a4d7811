//! Server settings: embedded defaults, an optional TOML file, and validation.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub use crate::persist::Fsync;

use serde::Deserialize;
use tessera_protocol::frame::DEFAULT_MAX_FRAME_BYTES;
use thiserror::Error;

/// Port the server listens on when none is given.
pub use tessera_protocol::DEFAULT_PORT;
/// The RESP port when none is given: Redis's, so redis-cli and Redis clients find it.
pub const DEFAULT_RESP_PORT: u16 = 6379;
/// The metrics port when none is given: beside the client port (7379) and RESP's (6379),
/// clear of redis_exporter's 9121 so both can run on one machine.
pub const DEFAULT_METRICS_PORT: u16 = 9379;
/// Most shards one node runs.
pub const MAX_SHARDS: usize = 1024;

/// Every setting; each field can come from the config file or a flag of the same name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Whether to listen for Redis clients (RESP2 and RESP3) too.
    pub resp: bool,
    /// The RESP port; 0 picks a free one.
    pub resp_port: u16,
    /// Shards (threads); 0 means one per available core.
    pub shards: usize,
    /// Most client connections open at once, across all shards.
    pub maxclients: usize,
    /// Largest request frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Push bytes a connection may leave unread before it is closed.
    pub max_push_buffer_bytes: usize,
    /// Log filter, e.g. `info` or `tessera_server=debug`.
    pub log_level: String,
    /// This node's identifier, reported by HELLO and INFO.
    pub node_id: String,
    /// Whether changes are logged and snapshotted under `dir`, surviving restarts.
    pub appendonly: bool,
    /// The data folder: each shard's log and snapshots.
    pub dir: PathBuf,
    /// When the log reaches the disk: `always`, `everysec` or `no`.
    pub appendfsync: Fsync,
    /// Log bytes since the last snapshot that start a new one, when also at least the
    /// last snapshot's size (0: only the SNAPSHOT command takes one).
    pub snapshot_after_bytes: u64,
    /// Cut a log at a damaged record instead of refusing to start (what follows is lost).
    pub repair_log: bool,
    /// Seconds shutdown waits for clients to take their last replies before closing them.
    pub shutdown_timeout: f64,
    /// Seconds a connection may sit idle (no request, no reply owed, no watch) before it
    /// is closed; 0: never.
    pub timeout: f64,
    /// Seconds a frame may take to arrive once its first byte has.
    pub frame_timeout: f64,
    /// Reply bytes a connection may have waiting before its next requests wait too.
    pub max_output_buffer_bytes: usize,
    /// Bytes of data the node may hold (split evenly over its shards) before writes that
    /// add data are refused; 0: 90% of the machine's (or cgroup's) memory.
    pub maxmemory: u64,
    /// Which keys go when the node holds its maxmemory (Redis's policies).
    pub maxmemory_policy: crate::data::keyspace::Policy,
    /// Bound beyond loopback with no password, serve loopback clients only.
    pub protected_mode: bool,
    /// The default user's password; empty: the default user needs none.
    pub requirepass: String,
    /// ACL users, one `name rule...` line each, as redis.conf's `user` lines.
    pub user: Vec<String>,
    /// PEM certificate chain: set, every client connection speaks TLS.
    pub tls_cert_file: PathBuf,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: PathBuf,
    /// PEM CA certificates client certificates are checked against; empty: clients are
    /// not asked for one.
    pub tls_ca_cert_file: PathBuf,
    /// With a CA: whether a client must show a certificate (`yes`) or may (`optional`).
    pub tls_auth_clients: TlsAuthClients,
    /// Whether the node runs as a cluster member.
    pub cluster_enabled: bool,
    /// The node's cluster id (at least 1).
    pub cluster_node_id: u64,
    /// The cluster bus port; 0: the client port + 10000.
    pub cluster_bus_port: u16,
    /// The `host:port` announced to clients and peers; empty: the bound address.
    pub cluster_announce_addr: String,
    /// The user this node authenticates as on other nodes' client ports (slot migration,
    /// multi-key commands split across nodes); empty: the default user.
    pub cluster_user: String,
    /// That user's password; empty: none is sent.
    pub cluster_pass: String,
    /// Change-stream bytes each shard keeps for its replicas; a replica further behind
    /// copies the shard afresh (Redis's repl-backlog-size, per shard).
    pub repl_backlog_size: usize,
    /// Whether to serve Prometheus metrics over HTTP.
    pub metrics: bool,
    /// The metrics port; 0 picks a free one.
    pub metrics_port: u16,
    /// Microseconds past which a request goes in the slow log; negative: none does.
    pub slowlog_log_slower_than: i64,
    /// Slow log entries each shard keeps.
    pub slowlog_max_len: usize,
    /// Milliseconds from which the latency monitor keeps an event; 0: it is off.
    pub latency_monitor_threshold: u64,
}

/// Whether TLS clients must show a certificate the CA signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsAuthClients {
    /// A client without a valid certificate is refused.
    #[default]
    Yes,
    /// A client may show one; one it shows must be valid.
    Optional,
}

impl std::str::FromStr for TlsAuthClients {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "yes" => Ok(TlsAuthClients::Yes),
            "optional" => Ok(TlsAuthClients::Optional),
            _ => Err(format!("expected yes or optional, not {text:?}")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            resp: true,
            resp_port: DEFAULT_RESP_PORT,
            shards: 0,
            maxclients: 10_000,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_push_buffer_bytes: 32 << 20,
            log_level: "info".into(),
            node_id: "node-1".into(),
            appendonly: true,
            dir: PathBuf::from("tessera-data"),
            appendfsync: Fsync::Everysec,
            snapshot_after_bytes: 64 << 20,
            repair_log: false,
            shutdown_timeout: 10.0,
            timeout: 300.0,
            frame_timeout: 30.0,
            max_output_buffer_bytes: 64 << 20,
            maxmemory: 0,
            protected_mode: true,
            maxmemory_policy: crate::data::keyspace::Policy::Noeviction,
            requirepass: String::new(),
            user: Vec::new(),
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            tls_ca_cert_file: PathBuf::new(),
            tls_auth_clients: TlsAuthClients::Yes,
            cluster_enabled: false,
            cluster_node_id: 1,
            cluster_bus_port: 0,
            cluster_announce_addr: String::new(),
            cluster_user: String::new(),
            cluster_pass: String::new(),
            repl_backlog_size: 16 << 20,
            metrics: true,
            metrics_port: DEFAULT_METRICS_PORT,
            slowlog_log_slower_than: crate::diagnostics::DEFAULT_SLOWLOG_SLOWER_THAN_US,
            slowlog_max_len: crate::diagnostics::DEFAULT_SLOWLOG_MAX_LEN,
            latency_monitor_threshold: 0,
        }
    }
}

/// Why settings were refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File named.
        path: String,
        /// Underlying failure.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("invalid config file: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads settings from a TOML file; missing fields keep their defaults.
    ///
    /// # Errors
    /// `Read` if the file cannot be read, `Parse` if it is not valid.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(toml::from_str(&text)?)
    }

    /// Shards to run: the configured count, or one per available core.
    pub fn shard_count(&self) -> usize {
        if self.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.shards
        }
    }

    /// Checks every value is in range.
    ///
    /// # Errors
    /// `Invalid` naming the first bad setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: String| Err(ConfigError::Invalid(what));
        if self.shard_count() > MAX_SHARDS {
            return invalid(format!("shards must be at most {MAX_SHARDS}"));
        }
        if self.maxclients == 0 {
            return invalid("maxclients must be at least 1".into());
        }
        if !(1024..=1 << 30).contains(&self.max_frame_bytes) {
            return invalid("max-frame-bytes must be between 1024 and 1073741824".into());
        }
        if self.max_push_buffer_bytes < 1024 {
            return invalid("max-push-buffer-bytes must be at least 1024".into());
        }
        if self.repl_backlog_size < 16 << 10 {
            return invalid("repl-backlog-size must be at least 16384".into());
        }
        if self.cluster_enabled && self.cluster_node_id == 0 {
            return invalid("cluster-node-id must be at least 1".into());
        }
        if self.node_id.is_empty() {
            return invalid("node-id must not be empty".into());
        }
        if !(0.0..=3600.0).contains(&self.shutdown_timeout) {
            return invalid("shutdown-timeout must be between 0 and 3600 seconds".into());
        }
        if !(0.0..=86_400.0).contains(&self.timeout) {
            return invalid("timeout must be between 0 and 86400 seconds".into());
        }
        if self.max_output_buffer_bytes < 1024 {
            return invalid("max-output-buffer-bytes must be at least 1024".into());
        }
        if !(0.001..=3600.0).contains(&self.frame_timeout) {
            return invalid("frame-timeout must be between 0.001 and 3600 seconds".into());
        }
        if self.appendonly && self.dir.as_os_str().is_empty() {
            return invalid("dir must not be empty while appendonly is on".into());
        }
        if let Err(error) = self.acl() {
            return invalid(error);
        }
        let (cert, key) = (
            self.tls_cert_file.as_os_str().is_empty(),
            self.tls_key_file.as_os_str().is_empty(),
        );
        if cert != key {
            return invalid("tls-cert-file and tls-key-file go together".into());
        }
        if cert && !self.tls_ca_cert_file.as_os_str().is_empty() {
            return invalid("tls-ca-cert-file needs tls-cert-file and tls-key-file".into());
        }
        Ok(())
    }

    /// The users these settings declare.
    ///
    /// # Errors
    /// A `user` line that is not valid ACL syntax.
    pub fn acl(&self) -> Result<crate::acl::Acl, String> {
        crate::acl::Acl::from_settings(Some(&self.requirepass), &self.user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_only_what_it_names() {
        let config: Config =
            toml::from_str("port = 9000\nshards = 2\nmax-frame-bytes = 4096").unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(config.shards, 2);
        assert_eq!(config.max_frame_bytes, 4096);
        assert_eq!(config.maxclients, Config::default().maxclients);
        config.validate().unwrap();
    }

    #[test]
    fn users_come_from_the_file_and_bad_rules_are_refused() {
        let config: Config =
            toml::from_str("requirepass = \"pw\"\nuser = [\"ops on >o +@all ~*\"]").unwrap();
        let acl = config.acl().unwrap();
        assert!(!acl.default_is_open());
        assert!(acl.authenticate(b"ops", b"o").is_some());
        let config = Config {
            user: vec!["ops on +nosuchcommand".into()],
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn unknown_and_out_of_range_settings_are_refused() {
        assert!(toml::from_str::<Config>("prot = 1").is_err());
        let config = Config {
            max_frame_bytes: 10,
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}
