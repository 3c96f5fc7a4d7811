//! The cluster bus: the TCP port nodes speak Raft and cluster requests on, and the client
//! side Raft sends through.
//!
//! A message is `len:u32` then that many bytes of JSON: Raft traffic here is a few
//! heartbeats a second and a topology change now and then, so clarity wins over bytes.
//! A peer's message is capped at `MAX_BUS_MESSAGE` and a bad one closes that connection
//! only.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::LogId;
use serde::{Deserialize, Serialize};
use tessera_cluster::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Changed, CommitError, Peer, Proposal, Raft, RaftConfig};

/// Largest message a peer may send.
const MAX_BUS_MESSAGE: usize = 64 << 20;

/// How long a node waits to connect to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A request one node sends another.
#[derive(Serialize, Deserialize)]
pub enum BusRequest {
    /// Raft: a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: entries, or a heartbeat.
    Append(AppendEntriesRequest<RaftConfig>),
    /// Raft: a chunk of a snapshot.
    Snapshot(InstallSnapshotRequest<RaftConfig>),
    /// To the leader: confirm leadership with a quorum and name the log index a follower
    /// must have applied to be as current as the cluster; names the asking node, whose
    /// lease the leader then knows to run from no later than now.
    Confirm(NodeId),
    /// To the leader: commit a topology or membership change.
    Propose(Proposal),
}

/// The answer to a `BusRequest`, variant for variant.
#[derive(Serialize, Deserialize)]
pub enum BusResponse {
    /// To `Vote`.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To `Append`.
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To `Snapshot`.
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// To `Confirm`: the read index, or why leadership could not be confirmed.
    Confirmed(Result<Option<LogId<NodeId>>, String>),
    /// To `Propose`: the epoch after the change, or why it was not committed.
    Proposed(Result<Changed, CommitError>),
}

async fn write_message<T: Serialize>(stream: &mut TcpStream, message: &T) -> io::Result<()> {
    let json = serde_json::to_vec(message).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(json.len() + 4);
    frame.extend_from_slice(&(json.len() as u32).to_le_bytes());
    frame.extend_from_slice(&json);
    stream.write_all(&frame).await
}

async fn read_message<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> io::Result<T> {
    let len = stream.read_u32_le().await? as usize;
    if len > MAX_BUS_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bus message too large",
        ));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Sends one request to `addr` over `conn` (connecting first if need be) and reads the
/// answer; any failure drops the connection so the next call starts afresh.
pub async fn exchange(
    conn: &mut Option<TcpStream>,
    addr: &str,
    request: &BusRequest,
    timeout: Duration,
) -> io::Result<BusResponse> {
    let attempt = async {
        if conn.is_none() {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            stream.set_nodelay(true)?;
            *conn = Some(stream);
        }
        let stream = conn.as_mut().expect("connected above");
        write_message(stream, request).await?;
        read_message(stream).await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(error)) => {
            *conn = None;
            Err(error)
        }
        Err(_) => {
            *conn = None;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer did not answer in time",
            ))
        }
    }
}

/// Serves the bus: every peer connection in its own task, until the process ends.
pub async fn serve(listener: TcpListener, raft: Raft, leases: Arc<super::failover::Leases>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_peer(stream, raft.clone(), leases.clone()));
    }
}

async fn serve_peer(mut stream: TcpStream, raft: Raft, leases: Arc<super::failover::Leases>) {
    while let Ok(request) = read_message::<BusRequest>(&mut stream).await {
        let response = match request {
            BusRequest::Vote(vote) => BusResponse::Vote(raft.vote(vote).await),
            BusRequest::Append(append) => BusResponse::Append(raft.append_entries(append).await),
            BusRequest::Snapshot(chunk) => {
                BusResponse::Snapshot(raft.install_snapshot(chunk).await)
            }
            BusRequest::Confirm(asker) => {
                let asked = crate::clock::now_millis();
                let confirmed = raft.ensure_linearizable().await;
                if confirmed.is_ok() {
                    leases.granted(asker, asked);
                }
                BusResponse::Confirmed(confirmed.map_err(|e| e.to_string()))
            }
            BusRequest::Propose(proposal) => BusResponse::Proposed(commit(&raft, proposal).await),
        };
        if write_message(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

/// Commits `proposal` on this node, which must be the leader: a topology change through
/// the log, or a voter added (first caught up as a learner) or removed.
///
/// # Errors
/// Why Raft did not commit it, or why the topology refused it.
pub async fn commit(raft: &Raft, proposal: Proposal) -> Result<Changed, CommitError> {
    let failed = |error: String| CommitError::Failed(error);
    let voters = || -> std::collections::BTreeSet<NodeId> {
        raft.metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    };
    let changed = match proposal {
        Proposal::Topology(change) => raft
            .client_write(change)
            .await
            .map(|written| written.data)
            .map_err(|e| failed(e.to_string()))?,
        Proposal::AddVoter(id, peer) => {
            raft.add_learner(id, peer, true)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let mut wanted = voters();
            wanted.insert(id);
            raft.change_membership(wanted, false)
                .await
                .map(|written| written.data)
                .map_err(|e| failed(e.to_string()))?
        }
        Proposal::RemoveVoter(id) => {
            let mut wanted = voters();
            if !wanted.remove(&id) {
                return Ok(Changed::default());
            }
            raft.change_membership(wanted, false)
                .await
                .map(|written| written.data)
                .map_err(|e| failed(e.to_string()))?
        }
    };
    match changed.refused {
        Some(why) => Err(CommitError::Refused(why)),
        None => Ok(changed),
    }
}

/// Makes one `Peer` client per replication target.
pub struct Network;

impl RaftNetworkFactory<RaftConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Peer) -> PeerClient {
        PeerClient {
            target,
            addr: node.bus.clone(),
            conn: None,
        }
    }
}

/// Raft's connection to one peer's bus.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    conn: Option<TcpStream>,
}

type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, Peer, RaftError<NodeId, E>>;

impl PeerClient {
    async fn call(
        &mut self,
        request: BusRequest,
        option: &RPCOption,
    ) -> Result<BusResponse, NetworkFailure> {
        exchange(&mut self.conn, &self.addr, &request, option.hard_ttl())
            .await
            .map_err(|error| {
                if error.kind() == io::ErrorKind::InvalidData {
                    NetworkFailure::Garbled(error)
                } else {
                    NetworkFailure::Unreachable(error)
                }
            })
    }
}

/// Why a bus call failed.
enum NetworkFailure {
    /// No connection, or it broke: back off before retrying.
    Unreachable(io::Error),
    /// The peer answered something unreadable.
    Garbled(io::Error),
}

impl NetworkFailure {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, Peer, RaftError<NodeId, E>> {
        match self {
            NetworkFailure::Unreachable(error) => RPCError::Unreachable(Unreachable::new(&error)),
            NetworkFailure::Garbled(error) => RPCError::Network(NetworkError::new(&error)),
        }
    }
}

fn mismatched<E: std::error::Error>() -> RPCError<NodeId, Peer, RaftError<NodeId, E>> {
    let error = io::Error::new(io::ErrorKind::InvalidData, "answer of the wrong kind");
    RPCError::Network(NetworkError::new(&error))
}

impl PeerClient {
    /// Sends `request` and reads the answer `pick` accepts; a remote error is the peer's.
    async fn rpc<T, E: std::error::Error>(
        &mut self,
        request: BusRequest,
        option: &RPCOption,
        pick: impl FnOnce(BusResponse) -> Option<Result<T, RaftError<NodeId, E>>>,
    ) -> Result<T, RPCError<NodeId, Peer, RaftError<NodeId, E>>> {
        match self.call(request, option).await {
            Ok(response) => match pick(response) {
                Some(Ok(answer)) => Ok(answer),
                Some(Err(error)) => {
                    Err(RPCError::RemoteError(RemoteError::new(self.target, error)))
                }
                None => Err(mismatched()),
            },
            Err(failure) => Err(failure.into_rpc()),
        }
    }
}

impl RaftNetwork<RaftConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<RaftConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        self.rpc(
            BusRequest::Append(rpc),
            &option,
            |response| match response {
                BusResponse::Append(answer) => Some(answer),
                _ => None,
            },
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<RaftConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        self.rpc(
            BusRequest::Snapshot(rpc),
            &option,
            |response| match response {
                BusResponse::Snapshot(answer) => Some(answer),
                _ => None,
            },
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        self.rpc(BusRequest::Vote(rpc), &option, |response| match response {
            BusResponse::Vote(answer) => Some(answer),
            _ => None,
        })
        .await
    }
}
