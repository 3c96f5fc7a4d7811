//! PUBLISH passed on to the cluster's other nodes, as Redis Cluster does: each shard keeps
//! one link per peer and sends it PUBLISH.LOCAL, which that node delivers to its own
//! subscribers only, so a message crosses each link once and never comes back.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashMap;
use tessera_client::Connection;
use tessera_cluster::NodeId;
use tessera_protocol::{Command, PubSubCommand};
use tokio::sync::mpsc;

use crate::shard::Shard;

/// Messages waiting for one peer before more are dropped: pub/sub delivers at most once,
/// and a peer that cannot keep up must not make this node hold an unbounded backlog.
const QUEUE_PER_PEER: usize = 16_384;
/// How long after a link failed to open no new one is tried (its messages are dropped).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One shard's links to the other nodes.
#[derive(Default)]
pub struct Relays {
    links: RefCell<HashMap<NodeId, Link>>,
}

/// A link to one peer: its queue, while its task runs.
struct Link {
    addr: String,
    queue: mpsc::Sender<(Bytes, Bytes)>,
    opened: Instant,
}

/// Passes a PUBLISH on to every other node of the cluster this node is in; nothing when
/// it is in none, or alone in one. Links to nodes that left the topology are closed.
pub fn relay(shard: &Rc<Shard>, channel: &[u8], message: &[u8]) {
    let Some(cluster) = shard.node.cluster.as_ref() else {
        return;
    };
    let Some(loaded) = shard.topology() else {
        return;
    };
    let Some(topology) = loaded.as_ref().as_ref() else {
        return;
    };
    let mut links = shard.relays.links.borrow_mut();
    links.retain(|id, _| topology.node(*id).is_some());
    if topology.nodes().len() < 2 {
        return;
    }
    let (channel, message) = (
        Bytes::copy_from_slice(channel),
        Bytes::copy_from_slice(message),
    );
    for node in topology.nodes() {
        if node.id == cluster.id {
            continue;
        }
        let stale = links.get(&node.id).is_some_and(|link| {
            link.addr != node.addr
                || (link.queue.is_closed() && link.opened.elapsed() >= RETRY_AFTER)
        });
        if stale {
            links.remove(&node.id);
        }
        let link = links
            .entry(node.id)
            .or_insert_with(|| open(node.addr.clone(), cluster.peer_client.clone()));
        match link.queue.try_send((channel.clone(), message.clone())) {
            Ok(()) => {}
            Err(_) => shard.stats.borrow_mut().pubsub_relay_dropped += 1,
        }
    }
}

/// Starts a link's task: it connects, then sends each queued message as PUBLISH.LOCAL
/// without waiting for the answers; when the connection fails the queue closes.
fn open(addr: String, config: tessera_client::ClientConfig) -> Link {
    let (queue, mut pending) = mpsc::channel::<(Bytes, Bytes)>(QUEUE_PER_PEER);
    let target = addr.clone();
    tokio::task::spawn_local(async move {
        let connection = match Connection::open(&target, None, &config).await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(peer = %target, %error, "cannot pass PUBLISH on to a peer");
                return;
            }
        };
        while let Some((channel, message)) = pending.recv().await {
            if connection.is_closed() {
                tracing::warn!(peer = %target, "lost the link that passes PUBLISH on");
                return;
            }
            // The peer's count is not this node's answer, as in Redis Cluster.
            drop(connection.start(Command::PubSub(PubSubCommand::Publish {
                channel,
                message,
                local: true,
            })));
        }
    });
    Link {
        addr,
        queue,
        opened: Instant::now(),
    }
}
