//! One multiplexed connection to one shard: many requests in flight, replies matched by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_protocol::commands::admin::Credentials;
use tessera_protocol::AdminCommand;

use bytes::BytesMut;
use futures_util::StreamExt;
use tessera_protocol::codec::ClientCodec;
use tessera_protocol::{encode_request, Command, HelloInfo, Value, PROTOCOL_VERSION, PUSH_ID};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

use crate::error::{Error, Result};
use crate::ClientConfig;

/// Most frames coalesced into one write.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Value>>;

struct State {
    /// Next request id to hand out; never `PUSH_ID`.
    next_id: u32,
    pending: HashMap<u32, Reply>,
    /// Set once the connection is gone; every later request fails with it.
    closed: Option<String>,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn fail_all(&self, reason: String) {
        let pending = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.closed.is_none() {
                state.closed = Some(reason.clone());
            }
            std::mem::take(&mut state.pending)
        };
        for (_, reply) in pending {
            let _ = reply.send(Err(Error::ConnectionLost(reason.clone())));
        }
    }
}

/// A live connection; cheap to clone.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<(u32, Command)>,
    hello: Arc<HelloInfo>,
    request_timeout: Option<std::time::Duration>,
}

impl Connection {
    /// Connects, sends HELLO (asking for `shard` if given, with the configured
    /// credentials) and waits for its answer.
    ///
    /// # Errors
    /// `Connect` if the socket cannot be opened within the connect timeout; `Server` if
    /// the HELLO is refused (WRONGPASS, NOAUTH ...); `ConnectionLost` if the server
    /// closes first.
    pub async fn open(
        address: &str,
        shard: Option<u16>,
        config: &ClientConfig,
    ) -> Result<Connection> {
        Self::open_inner(address, shard, config, None).await
    }

    /// Like `open`, also handing back the server's pushes (frames with request id 0,
    /// such as presence changes) in the order they arrived.
    ///
    /// # Errors
    /// As `open`.
    pub async fn open_with_pushes(
        address: &str,
        shard: Option<u16>,
        config: &ClientConfig,
    ) -> Result<(Connection, mpsc::UnboundedReceiver<Value>)> {
        let (sink, pushes) = mpsc::unbounded_channel();
        let connection = Self::open_inner(address, shard, config, Some(sink)).await?;
        Ok((connection, pushes))
    }

    async fn open_inner(
        address: &str,
        shard: Option<u16>,
        config: &ClientConfig,
        pushes: Option<mpsc::UnboundedSender<Value>>,
    ) -> Result<Connection> {
        let connect_error = |source| Error::Connect {
            address: address.to_string(),
            source,
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 1,
                pending: HashMap::new(),
                closed: None,
            }),
        });
        let (outgoing, queue) = mpsc::unbounded_channel();
        match &config.tls {
            None => {
                let (read, write) = stream.into_split();
                tokio::spawn(write_loop(write, queue, shared.clone()));
                tokio::spawn(read_loop(read, shared.clone(), pushes));
            }
            Some(tls) => {
                let handshake = tls.connect(crate::tls::host_of(address), stream);
                let stream = tokio::time::timeout(config.connect_timeout, handshake)
                    .await
                    .map_err(|_| {
                        connect_error(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        ))
                    })?
                    .map_err(connect_error)?;
                let (read, write) = tokio::io::split(stream);
                tokio::spawn(write_loop(write, queue, shared.clone()));
                tokio::spawn(read_loop(read, shared.clone(), pushes));
            }
        }
        let mut connection = Connection {
            shared,
            outgoing,
            hello: Arc::new(HelloInfo {
                version: PROTOCOL_VERSION,
                node_id: String::new(),
                shards: 1,
                epoch: 0,
                shard: 0,
                server: String::new(),
                cluster: false,
            }),
            request_timeout: config.request_timeout,
        };
        let answer = connection
            .request(Command::Admin(AdminCommand::Hello {
                version: PROTOCOL_VERSION,
                shard,
                auth: config.password.as_ref().map(|password| Credentials {
                    username: config
                        .username
                        .clone()
                        .unwrap_or_else(|| "default".into())
                        .into(),
                    password: password.clone().into(),
                }),
            }))
            .await?;
        let hello = HelloInfo::from_value(&answer)
            .ok_or_else(|| Error::unexpected("a HELLO map", &answer))?;
        connection.hello = Arc::new(hello);
        Ok(connection)
    }

    /// What the server said in HELLO.
    pub fn hello(&self) -> &HelloInfo {
        &self.hello
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.shared
            .state
            .lock()
            .map(|s| s.closed.is_some())
            .unwrap_or(true)
    }

    /// Queues a request now and returns a receiver for its answer, so many requests can be
    /// put in flight before any is awaited.
    pub fn start(&self, command: Command) -> oneshot::Receiver<Result<Value>> {
        self.start_numbered(command).1
    }

    /// `start`, also answering the request's id (0 when it never went out).
    fn start_numbered(&self, command: Command) -> (u32, oneshot::Receiver<Result<Value>>) {
        let (reply, answer) = oneshot::channel();
        let id = {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reason) = &state.closed {
                let _ = reply.send(Err(Error::ConnectionLost(reason.clone())));
                return (PUSH_ID, answer);
            }
            // Ids are handed out under the same lock that registers them; an id still
            // awaiting its reply after 2^32 requests is skipped rather than reused.
            let mut id = state.next_id;
            while id == PUSH_ID || state.pending.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            state.next_id = id.wrapping_add(1);
            state.pending.insert(id, reply);
            id
        };
        if self.outgoing.send((id, command)).is_err() {
            self.shared.fail_all("connection writer stopped".into());
        }
        (id, answer)
    }

    /// Sends one request and waits for its answer, up to the configured request timeout;
    /// error replies become `Error::Server`.
    ///
    /// # Errors
    /// `Server` for an error reply, `ConnectionLost` if the connection drops first,
    /// `Timeout` if no reply comes in time.
    pub async fn request(&self, command: Command) -> Result<Value> {
        // A blocking pop may wait as long as it asked to before its answer is late; one
        // that waits for ever is never late (giving up on it could lose what it pops).
        let waits = match &command {
            Command::Blocking(blocking) => blocking.block_ms(),
            _ => None,
        };
        let (id, answer) = self.start_numbered(command);
        let limit = match (self.request_timeout, waits) {
            (_, Some(0)) | (None, _) => None,
            (Some(limit), Some(ms)) => Some(limit + std::time::Duration::from_millis(ms)),
            (Some(limit), None) => Some(limit),
        };
        let Some(limit) = limit else {
            return settle(answer.await);
        };
        match tokio::time::timeout(limit, answer).await {
            Ok(answer) => settle(answer),
            Err(_) => {
                // A reply arriving later finds no one waiting and is dropped.
                self.shared
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pending
                    .remove(&id);
                Err(Error::Timeout(limit))
            }
        }
    }
}

/// Turns a received answer into the call's result.
pub(crate) fn settle(answer: Result<Result<Value>, oneshot::error::RecvError>) -> Result<Value> {
    match answer {
        Ok(Ok(Value::Error(reply))) => Err(Error::Server(reply)),
        Ok(result) => result,
        Err(_) => Err(Error::ConnectionLost("connection dropped".into())),
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut queue: mpsc::UnboundedReceiver<(u32, Command)>,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for (id, command) in batch.drain(..) {
            encode_request(&mut buf, id, &command);
        }
        // TLS holds records back until flushed; for TCP the flush is free.
        let written = match write.write_all(&buf).await {
            Ok(()) => write.flush().await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            shared.fail_all(format!("write failed: {error}"));
            return;
        }
        buf.clear();
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    read: R,
    shared: Arc<Shared>,
    pushes: Option<mpsc::UnboundedSender<Value>>,
) {
    let mut frames = FramedRead::new(read, ClientCodec::default());
    let reason = loop {
        match frames.next().await {
            None => break "server closed the connection".to_string(),
            Some(Err(error)) => break format!("bad frame from server: {error}"),
            Some(Ok(frame)) => {
                let value = match Value::decode(frame.body) {
                    Ok(value) => value,
                    Err(error) => break format!("undecodable reply: {error}"),
                };
                if frame.id == PUSH_ID {
                    // An error push is the reason a server gives before closing.
                    if let Value::Error(reply) = &value {
                        break format!("server closed the connection: {reply}");
                    }
                    if let Some(pushes) = &pushes {
                        let _ = pushes.send(value);
                    }
                    continue;
                }
                let reply = shared
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pending
                    .remove(&frame.id);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(value));
                }
            }
        }
    };
    shared.fail_all(reason);
}
