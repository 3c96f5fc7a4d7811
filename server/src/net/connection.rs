//! One client connection: read frames, run them, write replies; HELLO may move it to
//! another shard.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use tessera_protocol::commands::TxCommand;
use tessera_protocol::frame::HEADER_LEN;
use tessera_protocol::AdminCommand;
use tessera_protocol::{
    encode_response, Command, ErrorCode, FrameDecoder, FrameError, HelloInfo, Located, Value,
    PROTOCOL_VERSION, PUSH_ID,
};
use tessera_sync::Slots;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::acl::{self, Session};
use crate::net::access;
use crate::net::tls::{Detached, Transport};
use crate::route::coordinator;
use crate::shard::clients::Endpoints;
use crate::shard::output::{ConnOutput, Wire};
use crate::shard::Shard;

/// Read buffer headroom kept free before each read.
const READ_RESERVE: usize = 16 * 1024;
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection in transit from the shard that accepted it to the shard it asked for.
pub struct Adoption {
    /// The socket (and its TLS session), detached from the accepting shard's reactor.
    pub stream: Detached,
    /// Bytes read after the HELLO frame, not yet decoded.
    pub buffered: BytesMut,
    /// Request id of the HELLO to answer.
    pub hello_id: u32,
    /// Its slot, identity and endpoints.
    pub admitted: Admitted,
}

/// What a connection holds from its acceptance on, whichever shard serves it.
pub struct Admitted {
    /// The connection's `maxclients` slot, released when the connection ends.
    pub slot: ClientSlot,
    /// Who the connection authenticated as.
    pub session: Session,
    /// Where its socket runs between.
    pub endpoints: Endpoints,
}

/// A held `maxclients` slot; dropping it frees the slot.
pub struct ClientSlot {
    slots: Arc<Slots>,
}

impl ClientSlot {
    /// Takes a slot, or `None` at the ceiling.
    pub fn acquire(slots: &Arc<Slots>) -> Option<ClientSlot> {
        slots.try_acquire().then(|| ClientSlot {
            slots: slots.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.slots.release();
    }
}

/// What the connection does after a batch of frames.
pub(crate) enum Next {
    Continue,
    /// The output is full: write it, then run the frames still buffered before reading.
    Drain,
    /// Hand the socket to another shard, answering the HELLO there.
    MoveTo {
        shard: u16,
        hello_id: u32,
    },
    /// Close after flushing, for the given reason.
    Close(&'static str),
    /// Write what is owed, wait this long, then run the frames still buffered (after a
    /// failed authentication).
    Pause(std::time::Duration),
}

/// What a connection carries from one request to the next.
pub(crate) struct ConnState {
    /// Whether the next request is the first, and so may move the connection.
    pub may_move: bool,
    /// Who the connection is.
    pub session: Session,
    /// For the TX about to run: the slot of the keys the connection WATCHes, so it runs
    /// only if none changed (RESP's EXEC sets it).
    pub tx_watch: Option<u16>,
}

/// How a connection's bytes become requests: Tessera's frames, or RESP.
pub(crate) enum Reader {
    Native(FrameDecoder),
    Resp(crate::resp::RespReader),
}

impl Reader {
    fn new(shard: &Shard, wire: Wire) -> Reader {
        match wire {
            Wire::Native => Reader::Native(FrameDecoder::new(shard.node.max_frame_bytes)),
            Wire::Resp(_) => Reader::Resp(crate::resp::RespReader::new(shard.node.max_frame_bytes)),
        }
    }
}

/// Serves a freshly accepted connection, speaking `wire`.
pub fn accept(shard: Rc<Shard>, stream: TcpStream, slot: ClientSlot, wire: Wire) {
    let _ = stream.set_nodelay(true);
    let admitted = Admitted {
        slot,
        session: Session::start(&shard.node.acl),
        endpoints: Endpoints::of(&stream),
    };
    let Some(tls) = shard.node.tls.clone() else {
        let stream = Transport::Plain(stream);
        let serving = serve(shard, stream, BytesMut::new(), None, admitted, wire);
        tokio::task::spawn_local(serving);
        return;
    };
    tokio::task::spawn_local(async move {
        let handshake = Transport::accept_tls(tls, stream);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => {
                serve(shard, stream, BytesMut::new(), None, admitted, wire).await;
            }
            failed => {
                shard.stats.borrow_mut().tls_handshake_failures += 1;
                let reason = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "timed out".into(),
                };
                tracing::debug!(shard = shard.id, reason, "TLS handshake failed");
            }
        }
    });
}

/// Takes over a connection another shard accepted, answering its HELLO first.
pub fn adopt(shard: Rc<Shard>, adoption: Adoption) {
    let Adoption {
        stream,
        buffered,
        hello_id,
        admitted,
    } = adoption;
    match stream.attach() {
        Ok(stream) => {
            let serving = serve(
                shard,
                stream,
                buffered,
                Some(hello_id),
                admitted,
                Wire::Native,
            );
            tokio::task::spawn_local(serving);
        }
        Err(error) => tracing::warn!(shard = shard.id, %error, "could not adopt a connection"),
    }
}

/// Refuses a connection at `maxclients` with a closing error push.
pub async fn reject(stream: TcpStream, wire: Wire) {
    let full = Value::error(ErrorCode::MaxClients, "max number of clients reached");
    refuse(stream, full, wire).await;
}

/// Refuses a connection with a closing error push saying why.
pub async fn refuse(mut stream: TcpStream, error: Value, wire: Wire) {
    let _ = stream.write_all(&closing(wire, &error)).await;
    let _ = stream.shutdown().await;
}

/// The last thing a connection is told before it closes: a push frame, or a RESP error.
fn closing(wire: Wire, error: &Value) -> BytesMut {
    let mut buf = BytesMut::new();
    match wire {
        Wire::Native => encode_response(&mut buf, PUSH_ID, error),
        Wire::Resp(version) => tessera_protocol::resp::encode(&mut buf, error, version),
    }
    buf
}

async fn serve(
    shard: Rc<Shard>,
    mut stream: Transport,
    mut inbuf: BytesMut,
    hello_id: Option<u32>,
    admitted: Admitted,
    wire: Wire,
) {
    let Admitted {
        slot,
        session,
        endpoints,
    } = admitted;
    let out = Rc::new(ConnOutput::default());
    out.wire.set(wire);
    out.client.endpoints.set(Some(endpoints));
    out.client.note_user(session.username());
    let registration = shard.register_connection(&out);
    let mut decoder = Reader::new(&shard, wire);
    let mut spare = BytesMut::with_capacity(READ_RESERVE);
    // A moved connection has answered nothing yet; one accepted here may still move.
    let mut state = ConnState {
        may_move: hello_id.is_none(),
        session,
        tx_watch: None,
    };
    if let Some(id) = hello_id {
        out.reply(id, &hello_info(&shard).to_value());
    }
    let mut next = process(&shard, &out, &mut decoder, &mut inbuf, &mut state);
    out.read_clock.processed(inbuf.is_empty());
    loop {
        if out.pending_bytes() > hard_output_limit(&shard) {
            // Backpressure keeps a pipeline under the soft limit; only one reply bigger
            // than the hard one (a huge HGETALL or ZRANGE) gets here: it is dropped, not
            // sent, and the connection closes saying why.
            tell_and_close(&mut stream, &shard, wire).await;
            break;
        }
        if !out.is_empty() {
            out.swap_out(&mut spare);
            // What was swapped out was made before now: it may leave once every change
            // journaled so far is durable.
            let wrote = out.wrote.replace(false);
            let may_leave = tokio::select! {
                biased;
                () = shard.replies_may_leave(wrote) => true,
                () = out.aborted() => false,
            };
            // A client that does not read blocks this write; pushes piling up meanwhile,
            // or a shutdown out of time, end it rather than wait.
            let written = may_leave
                && tokio::select! {
                    biased;
                    // TLS holds records back until flushed; for TCP the flush is free.
                    written = write_flushed(&mut stream, &spare) => {
                        if written.is_ok() {
                            shard.stats.borrow_mut().net_output_bytes += spare.len() as u64;
                        }
                        written.is_ok()
                    }
                    () = out.aborted() => false,
                };
            if !written {
                if let Some(reason) = out.abort_reason() {
                    tracing::debug!(shard = shard.id, reason, "closing connection");
                }
                break;
            }
            spare.clear();
        }
        if let Some(reason) = out.abort_reason() {
            tracing::debug!(shard = shard.id, reason, "closing connection");
            break;
        }
        if out.client.close_when_answered.get() && out.in_flight.get() == 0 && out.is_empty() {
            tracing::debug!(shard = shard.id, "closing connection: it killed itself");
            break;
        }
        match next {
            Next::Continue => {}
            Next::Drain => {
                if !shard.is_stopping() {
                    next = process(&shard, &out, &mut decoder, &mut inbuf, &mut state);
                    out.read_clock.processed(inbuf.is_empty());
                    continue;
                }
            }
            Next::Pause(pause) => {
                tokio::select! {
                    biased;
                    () = out.aborted() => {}
                    () = tokio::time::sleep(pause) => {}
                }
                if !shard.is_stopping() {
                    next = process(&shard, &out, &mut decoder, &mut inbuf, &mut state);
                    out.read_clock.processed(inbuf.is_empty());
                    continue;
                }
            }
            Next::Close(reason) => {
                tracing::debug!(shard = shard.id, reason, "closing connection");
                break;
            }
            Next::MoveTo {
                shard: target,
                hello_id,
            } => {
                let admitted = Admitted {
                    slot,
                    session: state.session,
                    endpoints,
                };
                hand_over(&shard, stream, inbuf, (target, hello_id), admitted);
                shard.unregister_connection(registration);
                return;
            }
        }
        if shard.is_stopping() {
            if out.in_flight.get() == 0 {
                break;
            }
            out.wake.wait().await;
            continue;
        }
        if inbuf.capacity() - inbuf.len() < READ_RESERVE / 4 {
            inbuf.reserve(READ_RESERVE);
        }
        let was_empty = inbuf.is_empty();
        tokio::select! {
            biased;
            _ = out.wake.wait() => {}
            read = stream.read_buf(&mut inbuf) => {
                next = match read {
                    Ok(0) => Next::Close("peer closed"),
                    Ok(read) => {
                        shard.stats.borrow_mut().net_input_bytes += read as u64;
                        out.read_clock.arrived(was_empty);
                        let next = process(&shard, &out, &mut decoder, &mut inbuf, &mut state);
                        out.read_clock.processed(inbuf.is_empty());
                        next
                    }
                    Err(_) => Next::Close("read failed"),
                };
            }
        }
    }
    if let Reader::Resp(reader) = &mut decoder {
        crate::resp::multi::end_watch(&shard, &out, reader);
        shard.flush();
    }
    coordinator::unwatch_all(&shard, &out);
    crate::route::blocking::unblock_all(&shard, &out);
    crate::route::pubsub::unsubscribe_all(&shard, &out);
    let _ = stream.shutdown().await;
    drop(slot);
    shard.unregister_connection(registration);
}

/// Runs every whole request in `inbuf`, then sends what other shards must do.
fn process(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    reader: &mut Reader,
    inbuf: &mut BytesMut,
    state: &mut ConnState,
) -> Next {
    match reader {
        Reader::Native(decoder) => process_frames(shard, out, decoder, inbuf, state),
        Reader::Resp(reader) => crate::resp::process(shard, out, reader, inbuf, state),
    }
}

/// Runs every whole frame in `inbuf`, then sends what other shards must do.
fn process_frames(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    decoder: &FrameDecoder,
    inbuf: &mut BytesMut,
    state: &mut ConnState,
) -> Next {
    let started = Instant::now();
    let next = loop {
        // Replies past the output limit wait for the client to take what it has: a
        // pipeline of large reads costs the limit, not the sum of its replies.
        if out.pending_bytes() >= shard.node.max_output_buffer_bytes {
            break Next::Drain;
        }
        // Frames are decoded in place: arguments borrow the read buffer, and the buffer
        // advances past each frame once it has run.
        let (id, len) = match decoder.locate(inbuf) {
            Ok(Located::Frame { id, len }) => (id, len),
            Ok(Located::Incomplete { .. }) => {
                // The buffer grows with the bytes that arrive (the read loop tops it up),
                // never with the length a header claims: a header alone costs nothing.
                break Next::Continue;
            }
            Err(error) => {
                out.reply(PUSH_ID, &Value::error(error.code(), error.to_string()));
                coordinator::count_bad_request(shard);
                break Next::Close(close_reason(&error));
            }
        };
        let outcome = run_frame(shard, out, id, &inbuf[HEADER_LEN..len], started, state);
        inbuf.advance(len);
        if let Some(next) = outcome {
            break next;
        }
    };
    shard.flush();
    next
}

fn close_reason(error: &FrameError) -> &'static str {
    match error {
        FrameError::TooLarge { .. } => "frame too large",
        FrameError::TooShort(_) => "frame shorter than its header",
        FrameError::Io(_) => "i/o error",
    }
}

/// Runs one frame; returns `Some` when the connection must stop reading frames here.
fn run_frame(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    body: &[u8],
    started: Instant,
    state: &mut ConnState,
) -> Option<Next> {
    let first_request = std::mem::replace(&mut state.may_move, false);
    // Id 0 closes the connection whatever the body holds: a reply with id 0 would read as
    // a push.
    if id == PUSH_ID {
        out.reply(
            PUSH_ID,
            &Value::error(ErrorCode::Protocol, "request id 0 is reserved for pushes"),
        );
        return Some(Next::Close("request used the push id"));
    }
    shard.diagnostics.request_bytes.set(body.len());
    let command = match Command::decode(body) {
        Ok(command) => command,
        Err(error) => {
            coordinator::count_bad_request(shard);
            out.reply(id, &Value::error(error.code(), error.to_string()));
            return None;
        }
    };
    run_command(shard, out, id, command, started, state, first_request, None)
}

/// Runs one decoded request, then gives the slow log its arguments (`words`, as a RESP
/// client sent them, or the native request's name and keys) if it needs them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_command(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    command: Command<&[u8]>,
    started: Instant,
    state: &mut ConnState,
    first_request: bool,
    words: Option<&[&[u8]]>,
) -> Option<Next> {
    let tasks_before = out.in_flight.get();
    let next = serve_command(shard, out, id, &command, started, state, first_request);
    shard
        .diagnostics
        .after_run(shard, out, id, tasks_before, || match words {
            Some(words) => crate::diagnostics::slowlog::bounded_args(words.iter().copied()),
            None => crate::diagnostics::native_args(&command),
        });
    next
}

/// Runs one decoded request: authentication and ACL first, then here, on the cluster
/// layer, or on the shards that own its keys.
fn serve_command(
    shard: &Rc<Shard>,
    out: &Rc<ConnOutput>,
    id: u32,
    command: &Command<&[u8]>,
    started: Instant,
    state: &mut ConnState,
    first_request: bool,
) -> Option<Next> {
    let index = command.table_index();
    let complete = |reply: &Value| coordinator::complete(shard, out, id, index, started, reply);
    let acl = &shard.node.acl;
    let tx_watch = state.tx_watch.take().map(|slot| (out.id.get(), slot));
    if let Command::Admin(AdminCommand::Hello {
        version,
        shard: wanted,
        auth,
    }) = command
    {
        let hello = Hello {
            id,
            version: *version,
            wanted: *wanted,
            first_request,
        };
        if let Some(auth) = auth {
            let answer =
                access::authenticate(acl, &mut state.session, Some(auth.username), auth.password);
            out.client.note_user(state.session.username());
            if answer.pause.is_some() {
                return conclude(shard, complete, answer);
            }
        }
        if state.session.username().is_none() {
            complete(&acl::Refusal::NoAuth.to_value());
            return None;
        }
        return hello.answer(shard, out, started, index);
    }
    if acl::is_session_command(command) {
        let answer = access::answer(acl, &mut state.session, command);
        out.client.note_user(state.session.username());
        return conclude(shard, complete, answer);
    }
    if let Err(refusal) = state.session.check(acl, command) {
        return conclude(shard, complete, access::Answer::refused(&refusal));
    }
    if let Command::Transactions(TxCommand::Tx(commands)) = command {
        // A transaction may do only what its commands, each sent alone, may.
        for inner in commands {
            if let Err(refusal) = state.session.check(acl, inner) {
                return conclude(shard, complete, access::Answer::refused(&refusal));
            }
        }
    }
    if let Command::Cluster(cluster) = command {
        super::cluster::answer(shard, out, id, index, started, cluster);
        return None;
    }
    coordinator::dispatch_watched(shard, out, id, command, started, tx_watch);
    None
}

/// Sends a session answer, counts it, and says what the connection does next.
pub(crate) fn conclude(
    shard: &Shard,
    complete: impl Fn(&Value),
    answer: access::Answer,
) -> Option<Next> {
    complete(&answer.reply);
    let mut stats = shard.stats.borrow_mut();
    stats.auth_failures += u64::from(answer.pause.is_some());
    stats.acl_denied += u64::from(answer.denied);
    drop(stats);
    match (answer.close, answer.pause) {
        (true, _) => Some(Next::Close("user deleted or disabled")),
        (false, Some(pause)) => Some(Next::Pause(pause)),
        (false, None) => None,
    }
}

/// A HELLO that has passed authentication.
struct Hello {
    id: u32,
    version: u16,
    wanted: Option<u16>,
    first_request: bool,
}

impl Hello {
    /// Answers it here, or asks to move the connection to the shard it wants.
    fn answer(
        self,
        shard: &Rc<Shard>,
        out: &Rc<ConnOutput>,
        started: Instant,
        index: usize,
    ) -> Option<Next> {
        let refuse = |code, message: String| {
            coordinator::complete(
                shard,
                out,
                self.id,
                index,
                started,
                &Value::error(code, message),
            );
            None
        };
        if self.version != PROTOCOL_VERSION {
            return refuse(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
                    self.version
                ),
            );
        }
        match self.wanted {
            Some(target) if target >= shard.shards() => refuse(
                ErrorCode::NoSuchShard,
                format!(
                    "no shard {target}: this node has shards 0 to {}",
                    shard.shards() - 1
                ),
            ),
            Some(target) if target != shard.id => {
                if self.first_request && out.is_empty() && out.in_flight.get() == 0 {
                    Some(Next::MoveTo {
                        shard: target,
                        hello_id: self.id,
                    })
                } else {
                    refuse(
                        ErrorCode::Syntax,
                        "HELLO with SHARD must be the first request on a connection".into(),
                    )
                }
            }
            _ => {
                let info = hello_info(shard).to_value();
                coordinator::complete(shard, out, self.id, index, started, &info);
                None
            }
        }
    }
}

fn hello_info(shard: &Shard) -> HelloInfo {
    HelloInfo {
        version: PROTOCOL_VERSION,
        node_id: shard.node.node_id.clone(),
        shards: shard.shards(),
        epoch: shard.cluster_epoch(),
        shard: shard.id,
        server: env!("CARGO_PKG_VERSION").into(),
        cluster: shard.node.cluster.is_some(),
    }
}

/// Unsent reply bytes past which a connection is closed: twice the soft limit at which
/// its requests start waiting for it to read.
fn hard_output_limit(shard: &Shard) -> usize {
    shard.node.max_output_buffer_bytes.saturating_mul(2)
}

/// Tells the client its output went past the hard limit (within a second, for one that
/// does not read), counting the close.
async fn tell_and_close(stream: &mut Transport, shard: &Shard, wire: Wire) {
    shard.stats.borrow_mut().output_limit_closes += 1;
    let message = format!(
        "a reply would have left more than {} bytes unsent (max-output-buffer-bytes × 2): the connection is closed",
        hard_output_limit(shard)
    );
    let push = closing(wire, &Value::error(ErrorCode::ReplyTooLarge, message));
    let told = write_flushed(stream, &push);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), told).await;
    tracing::debug!(
        shard = shard.id,
        "closing connection: output over its hard limit"
    );
}

/// Writes `bytes` and flushes what the transport may still hold.
async fn write_flushed(stream: &mut Transport, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

fn hand_over(
    shard: &Rc<Shard>,
    stream: Transport,
    buffered: BytesMut,
    (target, hello_id): (u16, u32),
    admitted: Admitted,
) {
    match stream.detach() {
        Ok(stream) => {
            let adoption = Adoption {
                stream,
                buffered,
                hello_id,
                admitted,
            };
            shard.submit(target, move |target: &Rc<Shard>| {
                adopt(target.clone(), adoption);
            });
            shard.flush();
        }
        Err(error) => tracing::warn!(shard = shard.id, %error, "could not detach a connection"),
    }
}
