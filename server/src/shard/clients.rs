//! What CLIENT LIST tells of each connection, and the filters CLIENT LIST and CLIENT KILL
//! pick connections with, answered by each shard for its own connections.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tessera_protocol::resp::RespVersion;

use super::output::{ConnOutput, Wire};
use super::Shard;
use crate::data::watch::ConnId;

/// Where a connection's socket runs between, fixed when it is accepted.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The address it connected to.
    pub local: Option<SocketAddr>,
    /// The socket's file descriptor, as Redis's `fd=` shows it.
    pub fd: i32,
}

impl Endpoints {
    /// The endpoints of an accepted socket.
    pub fn of(stream: &tokio::net::TcpStream) -> Endpoints {
        use std::os::fd::AsRawFd;
        Endpoints {
            peer: stream.peer_addr().ok(),
            local: stream.local_addr().ok(),
            fd: stream.as_raw_fd(),
        }
    }
}

/// A connection's facts beyond its output: who it is, since when, what it last ran.
pub struct ClientInfo {
    /// Where its socket runs between.
    pub endpoints: Cell<Option<Endpoints>>,
    /// When it was accepted.
    pub since: Cell<Instant>,
    /// What CLIENT SETNAME (or HELLO SETNAME) named it.
    pub name: RefCell<Option<Bytes>>,
    /// The user it authenticated as.
    pub user: RefCell<Option<Box<str>>>,
    /// The last command it sent, lower case, with its subcommand as `client|list`.
    pub last_command: RefCell<String>,
    /// Commands queued since MULTI, or `None` outside a transaction.
    pub queued: Cell<Option<u32>>,
    /// Set when it killed itself: it closes once its replies are written.
    pub close_when_answered: Cell<bool>,
}

impl Default for ClientInfo {
    fn default() -> Self {
        ClientInfo {
            endpoints: Cell::new(None),
            since: Cell::new(Instant::now()),
            name: RefCell::new(None),
            user: RefCell::new(None),
            last_command: RefCell::new(String::new()),
            queued: Cell::new(None),
            close_when_answered: Cell::new(false),
        }
    }
}

impl ClientInfo {
    /// Notes the command a request ran, for `cmd=`.
    pub fn note_command(&self, name: &[u8], sub: Option<&[u8]>) {
        let mut last = self.last_command.borrow_mut();
        // A pipeline mostly repeats one command: then there is nothing to write.
        if sub.is_none() && last.as_bytes().eq_ignore_ascii_case(name) {
            return;
        }
        last.clear();
        last.extend(name.iter().map(|b| char::from(b.to_ascii_lowercase())));
        if let Some(sub) = sub {
            last.push('|');
            last.extend(sub.iter().map(|b| char::from(b.to_ascii_lowercase())));
        }
    }

    /// Notes who the connection is now, after an authentication.
    pub fn note_user(&self, user: Option<&str>) {
        *self.user.borrow_mut() = user.map(Box::from);
    }
}

/// The kinds CLIENT LIST TYPE and CLIENT KILL TYPE name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A client not subscribed to anything.
    Normal,
    /// A client in subscriber mode.
    PubSub,
    /// A primary's link to this node, or a replica's: replication has its own links,
    /// not client connections, so none is listed.
    Replication,
}

impl ClientKind {
    /// Parses Redis's type names.
    pub fn parse(word: &[u8]) -> Option<ClientKind> {
        match &word.to_ascii_lowercase()[..] {
            b"normal" => Some(ClientKind::Normal),
            b"pubsub" => Some(ClientKind::PubSub),
            b"master" | b"replica" | b"slave" => Some(ClientKind::Replication),
            _ => None,
        }
    }
}

/// Which connections a CLIENT LIST or CLIENT KILL means; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    /// Only these connections, when given.
    pub ids: Option<Vec<ConnId>>,
    /// Only this kind.
    pub kind: Option<ClientKind>,
    /// Only connections authenticated as this user.
    pub user: Option<String>,
    /// Only the connection from this `ip:port`.
    pub addr: Option<String>,
    /// Only connections to this local `ip:port`.
    pub laddr: Option<String>,
    /// The connection asking.
    pub asking: Option<ConnId>,
    /// Whether the connection asking is left out (CLIENT KILL's SKIPME, yes unless told).
    pub skip_me: bool,
}

impl ClientFilter {
    /// Whether `out` is a connection this filter means.
    fn matches(&self, out: &ConnOutput) -> bool {
        let id = out.id.get();
        let endpoints = out.client.endpoints.get();
        let address = |addr: Option<SocketAddr>| addr.map(|a| a.to_string()).unwrap_or_default();
        self.ids.as_ref().is_none_or(|ids| ids.contains(&id))
            && self.kind.is_none_or(|kind| kind == kind_of(out))
            && self
                .user
                .as_ref()
                .is_none_or(|user| out.client.user.borrow().as_deref() == Some(user.as_str()))
            && self
                .addr
                .as_ref()
                .is_none_or(|addr| *addr == address(endpoints.and_then(|e| e.peer)))
            && self
                .laddr
                .as_ref()
                .is_none_or(|laddr| *laddr == address(endpoints.and_then(|e| e.local)))
            && !(self.skip_me && self.asking == Some(id))
    }
}

fn kind_of(out: &ConnOutput) -> ClientKind {
    if out.channels.borrow().is_empty() && out.patterns.borrow().is_empty() {
        ClientKind::Normal
    } else {
        ClientKind::PubSub
    }
}

/// The number CLIENT ID, HELLO and CLIENT LIST give a connection: its node-wide
/// identity packed so CLIENT KILL ID and CLIENT UNBLOCK can find it again.
pub fn client_id(id: ConnId) -> i64 {
    (i64::from(id.serial) << 32) | (i64::from(id.shard) << 20) | i64::from(id.slot & 0xf_ffff)
}

/// The connection a CLIENT ID number names, if it could name one.
pub fn conn_of(client_id: i64) -> Option<ConnId> {
    if client_id <= 0 {
        return None;
    }
    Some(ConnId {
        serial: u32::try_from(client_id >> 32).ok()?,
        shard: u16::try_from((client_id >> 20) & 0xfff).ok()?,
        slot: (client_id & 0xf_ffff) as u32,
    })
}

/// One CLIENT LIST line for `out`, in Redis's field names and order (the fields it has).
pub fn describe(out: &ConnOutput, now: Instant) -> String {
    let info = &out.client;
    let endpoints = info.endpoints.get();
    let address = |addr: Option<SocketAddr>| addr.map(|a| a.to_string()).unwrap_or_default();
    let name = info.name.borrow();
    let name = name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let (sub, psub) = (out.channels.borrow().len(), out.patterns.borrow().len());
    let mut flags = String::new();
    if sub + psub > 0 {
        flags.push('P');
    }
    if info.queued.get().is_some() {
        flags.push('x');
    }
    if out.reads_replica.get() {
        flags.push('r');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let multi = info.queued.get().map_or(-1, i64::from);
    let resp = match out.wire.get() {
        Wire::Resp(RespVersion::Resp3) => "3",
        Wire::Resp(RespVersion::Resp2) => "2",
        Wire::Native => "native",
    };
    let mut line = String::with_capacity(200);
    let _ = write!(
        line,
        "id={} addr={} laddr={} fd={} name={name} age={} idle={} flags={flags} db=0 \
         sub={sub} psub={psub} multi={multi} omem={} cmd={} user={} resp={resp}",
        client_id(out.id.get()),
        address(endpoints.and_then(|e| e.peer)),
        address(endpoints.and_then(|e| e.local)),
        endpoints.map_or(-1, |e| e.fd),
        now.saturating_duration_since(info.since.get()).as_secs(),
        now.saturating_duration_since(out.read_clock.last_read())
            .as_secs(),
        out.pending_bytes(),
        match info.last_command.borrow().as_str() {
            "" => "NULL",
            cmd => cmd,
        }
        .to_owned(),
        info.user.borrow().as_deref().unwrap_or(""),
    );
    line
}

impl Shard {
    /// CLIENT LIST's lines for this shard's connections that `filter` means.
    pub fn client_lines(&self, filter: &ClientFilter) -> Vec<(i64, String)> {
        let now = Instant::now();
        self.live_connections()
            .iter()
            .filter(|out| filter.matches(out))
            .map(|out| (client_id(out.id.get()), describe(out, now)))
            .collect()
    }

    /// Closes this shard's connections that `filter` means; answers how many.
    pub fn kill_clients(&self, filter: &ClientFilter) -> usize {
        let doomed: Vec<Rc<ConnOutput>> = self
            .live_connections()
            .into_iter()
            .filter(|out| filter.matches(out))
            .collect();
        for out in &doomed {
            if filter.asking == Some(out.id.get()) {
                // Its own kill: answered first, then closed, as Redis does.
                out.client.close_when_answered.set(true);
            } else {
                out.abort("killed by CLIENT KILL");
            }
        }
        doomed.len()
    }
}
