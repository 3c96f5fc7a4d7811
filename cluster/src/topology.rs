//! The cluster's topology: which node owns each of the 16,384 slots, at which epoch.
//!
//! Ownership is computed by rendezvous (highest-random-weight) hashing over node ids, so
//! adding a node to N takes about 1/(N+1) of the slots, all from the others evenly, and
//! removing one moves only the slots it owned. The computed table, not the function, is
//! what the cluster commits: a committed topology says who owns a slot even while a
//! later assignment is being migrated towards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::SLOT_COUNT;

/// A node's identity in the cluster: chosen by the operator, never reused.
pub type NodeId = u64;

/// What a client needs to know about one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's identity.
    pub id: NodeId,
    /// The address clients connect to, as `host:port`.
    pub addr: String,
    /// How many shards the node runs; slot `s` is on shard `s * shards / 16384`.
    pub shards: u16,
    /// The address Redis clients connect to, as `host:port`; empty when the node serves
    /// no RESP port.
    #[serde(default)]
    pub resp: String,
}

/// A run of consecutive slots with one owner, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot of the run.
    pub first: u16,
    /// Last slot of the run.
    pub last: u16,
    /// The node that owns every slot in it.
    pub owner: NodeId,
}

/// Slots one node hands to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The node that owns them now.
    pub from: NodeId,
    /// The node that will.
    pub to: NodeId,
    /// The slots, in slot order.
    pub slots: Vec<u16>,
}

/// Slot ownership at one epoch; every slot has exactly one owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// Rises by one with every committed change.
    pub epoch: u64,
    /// Every node in the cluster, ordered by id.
    nodes: Vec<NodeInfo>,
    /// The owner of each slot, indexed by slot.
    owners: Vec<NodeId>,
    /// Each replica and the primary it copies; a replica owns no slots.
    #[serde(default)]
    replicas: BTreeMap<NodeId, NodeId>,
}

impl Topology {
    /// The topology of `nodes` at `epoch`, every slot given to its rendezvous winner.
    ///
    /// # Panics
    /// If `nodes` is empty: a cluster has at least one node.
    pub fn assigned(epoch: u64, mut nodes: Vec<NodeInfo>) -> Topology {
        assert!(!nodes.is_empty(), "a topology needs at least one node");
        nodes.sort_by_key(|node| node.id);
        nodes.dedup_by_key(|node| node.id);
        let ids: Vec<NodeId> = nodes.iter().map(|node| node.id).collect();
        let owners = (0..SLOT_COUNT)
            .map(|slot| rendezvous_winner(slot, &ids))
            .collect();
        Topology {
            epoch,
            nodes,
            owners,
            replicas: BTreeMap::new(),
        }
    }

    /// Rebuilds a topology from the ranges a node published; `None` unless the ranges
    /// cover every slot exactly once and name only listed nodes.
    pub fn from_ranges(
        epoch: u64,
        mut nodes: Vec<NodeInfo>,
        ranges: &[SlotRange],
    ) -> Option<Topology> {
        nodes.sort_by_key(|node| node.id);
        let mut owners = vec![None; usize::from(SLOT_COUNT)];
        for range in ranges {
            if range.first > range.last || range.last >= SLOT_COUNT {
                return None;
            }
            nodes
                .binary_search_by_key(&range.owner, |node| node.id)
                .ok()?;
            for owner in &mut owners[usize::from(range.first)..=usize::from(range.last)] {
                if owner.replace(range.owner).is_some() {
                    return None;
                }
            }
        }
        let owners = owners.into_iter().collect::<Option<Vec<NodeId>>>()?;
        Some(Topology {
            epoch,
            nodes,
            owners,
            replicas: BTreeMap::new(),
        })
    }

    /// The same topology naming `replicas` (each replica with its primary), as a node
    /// published them; `None` if one is unlisted or a replica owns slots.
    pub fn with_replicas_listed(mut self, replicas: &[(NodeId, NodeId)]) -> Option<Topology> {
        for &(replica, primary) in replicas {
            self.node(replica)?;
            self.node(primary)?;
            if self.slots_of(replica) != 0 {
                return None;
            }
            self.replicas.insert(replica, primary);
        }
        Some(self)
    }

    /// The same nodes plus `node` (or with `node`'s entry replaced), reassigned, one epoch on.
    pub fn with_node(&self, node: NodeInfo) -> Topology {
        Topology::assigned(self.epoch + 1, self.nodes_with(node))
    }

    /// The nodes plus `node`, or with `node`'s entry replaced, ordered by id.
    fn nodes_with(&self, node: NodeInfo) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> = self
            .nodes
            .iter()
            .filter(|n| n.id != node.id)
            .cloned()
            .collect();
        nodes.push(node);
        nodes.sort_by_key(|node| node.id);
        nodes
    }

    /// The same nodes less `id`, reassigned, one epoch on; `None` if that would leave none.
    pub fn without_node(&self, id: NodeId) -> Option<Topology> {
        let nodes: Vec<NodeInfo> = self.nodes.iter().filter(|n| n.id != id).cloned().collect();
        (!nodes.is_empty()).then(|| Topology::assigned(self.epoch + 1, nodes))
    }

    /// The same slots plus `node` owning none of them yet (or with `node`'s entry
    /// replaced), one epoch on: how a node joins before slots migrate to it.
    pub fn with_joined(&self, node: NodeInfo) -> Topology {
        Topology {
            epoch: self.epoch + 1,
            nodes: self.nodes_with(node),
            owners: self.owners.clone(),
            replicas: self.replicas.clone(),
        }
    }

    /// `slots` handed from `from` to `to`, one epoch on; `None` unless `from` owns every
    /// one of them now and `to` is a listed node (a migration flips only what it copied).
    pub fn with_moved(&self, slots: &[u16], from: NodeId, to: NodeId) -> Option<Topology> {
        self.node(to)?;
        if self.replicas.contains_key(&to) {
            return None;
        }
        let mut owners = self.owners.clone();
        for &slot in slots {
            let owner = owners.get_mut(usize::from(slot))?;
            if *owner != from {
                return None;
            }
            *owner = to;
        }
        Some(Topology {
            epoch: self.epoch + 1,
            nodes: self.nodes.clone(),
            owners,
            replicas: self.replicas.clone(),
        })
    }

    /// The same slots less node `id`, one epoch on; `None` while it still owns a slot or
    /// if it is the last node.
    pub fn without_empty(&self, id: NodeId) -> Option<Topology> {
        if self.slots_of(id) != 0 || self.nodes.len() < 2 {
            return None;
        }
        let mut replicas = self.replicas.clone();
        // A primary's replicas outlive it as nodes owning nothing, ready to be used again.
        replicas.retain(|&replica, &mut primary| replica != id && primary != id);
        Some(Topology {
            epoch: self.epoch + 1,
            nodes: self.nodes.iter().filter(|n| n.id != id).cloned().collect(),
            owners: self.owners.clone(),
            replicas,
        })
    }

    /// `replica` made a copy of `primary`, one epoch on; `Err` with the reason unless
    /// both are listed, `replica` owns no slots and has no replicas, `primary` is no
    /// replica, and they run as many shards (a change record names its shard).
    pub fn with_replica(&self, replica: NodeId, primary: NodeId) -> Result<Topology, String> {
        let (Some(copy), Some(source)) = (self.node(replica), self.node(primary)) else {
            return Err(format!(
                "node {replica} or node {primary} is not in the cluster"
            ));
        };
        if replica == primary {
            return Err("a node cannot replicate itself".into());
        }
        if self.slots_of(replica) != 0 {
            return Err(format!(
                "node {replica} owns slots; migrate them away first"
            ));
        }
        if self.replicas.contains_key(&primary) {
            return Err(format!("node {primary} is itself a replica"));
        }
        if self.replicas.values().any(|&p| p == replica) {
            return Err(format!("node {replica} has replicas of its own"));
        }
        if copy.shards != source.shards {
            return Err(format!(
                "node {replica} runs {} shards and node {primary} {}: a replica runs as many as its primary",
                copy.shards, source.shards
            ));
        }
        let mut next = self.clone();
        next.epoch += 1;
        next.replicas.insert(replica, primary);
        Ok(next)
    }

    /// `promoted`, a replica of `failed`, takes every slot `failed` owned, one epoch on;
    /// `failed`'s other replicas follow `promoted`, and so does `failed` itself, which
    /// copies its new primary afresh when it comes back. `None` unless `promoted` is a
    /// replica of `failed`.
    pub fn with_failover(&self, failed: NodeId, promoted: NodeId) -> Option<Topology> {
        if self.replicas.get(&promoted) != Some(&failed) {
            return None;
        }
        let mut next = self.clone();
        next.epoch += 1;
        for owner in &mut next.owners {
            if *owner == failed {
                *owner = promoted;
            }
        }
        next.replicas.remove(&promoted);
        for primary in next.replicas.values_mut() {
            if *primary == failed {
                *primary = promoted;
            }
        }
        next.replicas.insert(failed, promoted);
        Some(next)
    }

    /// Every node that is no replica, ordered by id: the nodes slots are spread over.
    pub fn primaries(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .map(|node| node.id)
            .filter(|id| !self.replicas.contains_key(id))
            .collect()
    }

    /// The primary `id` copies, if it is a replica.
    pub fn primary_of(&self, id: NodeId) -> Option<NodeId> {
        self.replicas.get(&id).copied()
    }

    /// The replicas copying `id`, ordered by id.
    pub fn replicas_of(&self, id: NodeId) -> Vec<NodeId> {
        self.replicas
            .iter()
            .filter(|&(_, &primary)| primary == id)
            .map(|(&replica, _)| replica)
            .collect()
    }

    /// The moves that bring ownership to the rendezvous assignment of `nodes`: for each
    /// (from, to) pair, the slots to hand over, in slot order.
    pub fn moves_towards(&self, nodes: &[NodeId]) -> Vec<Move> {
        let mut moves: Vec<Move> = Vec::new();
        if nodes.is_empty() {
            return moves;
        }
        for slot in 0..SLOT_COUNT {
            let from = self.owners[usize::from(slot)];
            let to = rendezvous_winner(slot, nodes);
            if from == to {
                continue;
            }
            match moves.iter_mut().find(|m| m.from == from && m.to == to) {
                Some(found) => found.slots.push(slot),
                None => moves.push(Move {
                    from,
                    to,
                    slots: vec![slot],
                }),
            }
        }
        moves
    }

    /// Every node, ordered by id.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The node with identity `id`, if it is in the cluster.
    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes
            .binary_search_by_key(&id, |node| node.id)
            .ok()
            .map(|at| &self.nodes[at])
    }

    /// The node that owns `slot`.
    pub fn owner(&self, slot: u16) -> &NodeInfo {
        let id = self.owners[usize::from(slot)];
        self.node(id).expect("every owner is a listed node")
    }

    /// The id of the node that owns `slot`.
    pub fn owner_id(&self, slot: u16) -> NodeId {
        self.owners[usize::from(slot)]
    }

    /// How many slots `id` owns.
    pub fn slots_of(&self, id: NodeId) -> usize {
        self.owners.iter().filter(|&&owner| owner == id).count()
    }

    /// Ownership as runs of consecutive slots, in slot order.
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut ranges: Vec<SlotRange> = Vec::new();
        for (slot, &owner) in (0..SLOT_COUNT).zip(&self.owners) {
            match ranges.last_mut() {
                Some(run) if run.owner == owner => run.last = slot,
                _ => ranges.push(SlotRange {
                    first: slot,
                    last: slot,
                    owner,
                }),
            }
        }
        ranges
    }

    /// The slots whose owner differs between `self` and `other`.
    pub fn moved_slots(&self, other: &Topology) -> Vec<u16> {
        (0..SLOT_COUNT)
            .filter(|&slot| self.owners[usize::from(slot)] != other.owners[usize::from(slot)])
            .collect()
    }
}

/// The node whose weight `mix(mix(id) ^ slot)` for `slot` is highest (ties to the lower id).
fn rendezvous_winner(slot: u16, ids: &[NodeId]) -> NodeId {
    ids.iter()
        .map(|&id| (mix(mix(id) ^ u64::from(slot)), std::cmp::Reverse(id)))
        .max()
        .map(|(_, std::cmp::Reverse(id))| id)
        .expect("at least one node")
}

/// Sorted slots as runs of consecutive ones, `(first, last)` each: how commands name them.
pub fn slot_runs(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &slot in slots {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == slot => *last = slot,
            _ => runs.push((slot, slot)),
        }
    }
    runs
}

/// SplitMix64's finaliser: a fixed, well-spread 64-bit mix, so every implementation that
/// recomputes an assignment gets the same table.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[NodeId]) -> Vec<NodeInfo> {
        ids.iter()
            .map(|&id| NodeInfo {
                id,
                addr: format!("127.0.0.1:{}", 7000 + id),
                shards: 2,
                resp: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_failover_hands_every_slot_of_the_failed_primary_to_its_replica() {
        let formed = Topology::assigned(1, nodes(&[1, 2]));
        let joined = formed
            .with_joined(nodes(&[3])[0].clone())
            .with_joined(nodes(&[4])[0].clone());
        let replicated = joined
            .with_replica(3, 1)
            .unwrap()
            .with_replica(4, 1)
            .unwrap();
        assert_eq!(replicated.replicas_of(1), vec![3, 4]);
        assert!(
            replicated.with_replica(2, 3).is_err(),
            "a replica has no replicas"
        );
        assert!(
            replicated.with_replica(2, 1).is_err(),
            "a node owning slots cannot copy"
        );
        assert!(replicated
            .with_moved(&[0], replicated.owner_id(0), 3)
            .is_none());
        assert!(
            replicated.with_failover(1, 2).is_none(),
            "2 is no replica of 1"
        );
        let owned_by_1 = replicated.slots_of(1);
        let failed_over = replicated.with_failover(1, 3).unwrap();
        assert_eq!(failed_over.epoch, replicated.epoch + 1);
        assert_eq!(failed_over.slots_of(1), 0);
        assert_eq!(failed_over.slots_of(3), owned_by_1);
        assert_eq!(failed_over.slots_of(2), replicated.slots_of(2));
        assert_eq!(failed_over.primary_of(3), None);
        assert_eq!(
            failed_over.replicas_of(3),
            vec![1, 4],
            "the old primary copies the new one"
        );
        let mut unequal = nodes(&[5]);
        unequal[0].shards = 3;
        let err = replicated
            .with_joined(unequal[0].clone())
            .with_replica(5, 2)
            .unwrap_err();
        assert!(err.contains("shards"), "{err}");
    }

    #[test]
    fn slots_spread_evenly_over_nodes() {
        let topology = Topology::assigned(1, nodes(&[1, 2, 3]));
        for id in [1, 2, 3] {
            let share = topology.slots_of(id) as f64 / f64::from(SLOT_COUNT);
            assert!((share - 1.0 / 3.0).abs() < 0.03, "node {id} owns {share}");
        }
    }

    #[test]
    fn a_join_moves_about_one_in_n_plus_one_slots_all_to_the_new_node() {
        for count in 1..=8u64 {
            let ids: Vec<NodeId> = (1..=count).collect();
            let before = Topology::assigned(1, nodes(&ids));
            let after = before.with_node(nodes(&[100])[0].clone());
            let moved = before.moved_slots(&after);
            let expected = f64::from(SLOT_COUNT) / (count + 1) as f64;
            assert!(
                (moved.len() as f64 - expected).abs() < expected * 0.1,
                "{count} nodes: {} moved, about {expected} expected",
                moved.len()
            );
            assert!(moved.iter().all(|&slot| after.owner_id(slot) == 100));
            assert_eq!(after.epoch, 2);
        }
    }

    #[test]
    fn a_leave_moves_only_the_leavers_slots() {
        let before = Topology::assigned(1, nodes(&[1, 2, 3, 4]));
        let after = before.without_node(3).unwrap();
        let moved = before.moved_slots(&after);
        assert_eq!(moved.len(), before.slots_of(3));
        assert!(moved.iter().all(|&slot| before.owner_id(slot) == 3));
        assert!(before
            .without_node(3)
            .unwrap()
            .without_node(1)
            .unwrap()
            .without_node(2)
            .unwrap()
            .without_node(4)
            .is_none());
    }

    #[test]
    fn joining_moves_nothing_until_slots_are_handed_over() {
        let before = Topology::assigned(1, nodes(&[1, 2, 3]));
        let joined = before.with_joined(nodes(&[4])[0].clone());
        assert_eq!(joined.epoch, 2);
        assert!(before.moved_slots(&joined).is_empty());
        assert_eq!(joined.nodes().len(), 4);
        let moves = joined.moves_towards(&[1, 2, 3, 4]);
        assert!(moves.iter().all(|m| m.to == 4));
        let moved: usize = moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(
            moved,
            Topology::assigned(1, nodes(&[1, 2, 3, 4])).slots_of(4)
        );
        let mut after = joined.clone();
        for m in &moves {
            after = after.with_moved(&m.slots, m.from, m.to).unwrap();
        }
        assert!(after.moves_towards(&[1, 2, 3, 4]).is_empty());
        // A flip names only slots the giver owns, and only to a listed node.
        assert!(joined.with_moved(&moves[0].slots, 4, 1).is_none());
        assert!(joined.with_moved(&[0], joined.owner_id(0), 9).is_none());
    }

    #[test]
    fn slots_become_runs() {
        assert_eq!(
            slot_runs(&[1, 2, 3, 7, 9, 10]),
            vec![(1, 3), (7, 7), (9, 10)]
        );
        assert!(slot_runs(&[]).is_empty());
    }

    #[test]
    fn only_a_node_with_no_slots_can_leave() {
        let topology = Topology::assigned(1, nodes(&[1, 2]));
        assert!(topology.without_empty(2).is_none());
        let emptied = topology
            .moves_towards(&[1])
            .iter()
            .fold(topology.clone(), |t, m| {
                t.with_moved(&m.slots, m.from, m.to).unwrap()
            });
        let left = emptied.without_empty(2).unwrap();
        assert_eq!(left.nodes().len(), 1);
        assert_eq!(left.slots_of(1), usize::from(SLOT_COUNT));
        assert!(left.without_empty(1).is_none());
    }

    #[test]
    fn ranges_round_trip_and_bad_ranges_are_refused() {
        let topology = Topology::assigned(7, nodes(&[5, 9]));
        let ranges = topology.ranges();
        assert_eq!(
            Topology::from_ranges(7, nodes(&[9, 5]), &ranges).as_ref(),
            Some(&topology)
        );
        let mut overlapping = ranges.clone();
        overlapping.push(ranges[0]);
        assert!(Topology::from_ranges(7, nodes(&[5, 9]), &overlapping).is_none());
        assert!(Topology::from_ranges(7, nodes(&[5, 9]), &ranges[1..]).is_none());
        assert!(Topology::from_ranges(7, nodes(&[5]), &ranges).is_none());
    }

    #[test]
    fn the_assignment_is_pinned() {
        // Clients may recompute an assignment to check a published one: keep it fixed.
        let topology = Topology::assigned(1, nodes(&[1, 2, 3]));
        let owners: Vec<NodeId> = [0, 1, 2, 5000, 16383]
            .map(|slot| topology.owner_id(slot))
            .to_vec();
        assert_eq!(owners, vec![3, 3, 1, 1, 1]);
    }
}
