//! How a multi-key command splits across shards and how its parts' replies combine.
//!
//! One definition serves both sides: the server splits a request it receives by the
//! owner of each key, and the client splits before sending so each part goes straight to
//! its owner. Each family's `split` says which of its commands split and how they combine;
//! this module holds the grouping and the placing they share.

use bytes::Bytes;

use crate::wire::Payload;

/// How the replies of a split command's parts combine into the command's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Combine {
    /// One element per key, in the caller's order: part `p`'s array answers the positions
    /// `positions[p]` of a `len`-long reply.
    Positions {
        /// Reply positions per part.
        positions: Vec<Vec<usize>>,
        /// Keys asked for.
        len: usize,
    },
    /// The parts' integers add up.
    Sum,
    /// OK once every part is OK.
    AllOk,
    /// Timeline pages merged newest first, at most `limit` items.
    Merge {
        /// Page size.
        limit: u32,
    },
}

/// A multi-key command split by owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<C> {
    /// Each part with the shard that owns its keys, in shard order.
    pub parts: Vec<(u16, C)>,
    /// How the parts' replies combine.
    pub combine: Combine,
}

impl<C> Split<C> {
    /// The same split with each part converted.
    pub fn map<D>(self, convert: impl Fn(C) -> D) -> Split<D> {
        Split {
            parts: self
                .parts
                .into_iter()
                .map(|(owner, part)| (owner, convert(part)))
                .collect(),
            combine: self.combine,
        }
    }

    /// The owners taking part.
    pub fn owners(&self) -> impl Iterator<Item = u16> + '_ {
        self.parts.iter().map(|(owner, _)| *owner)
    }
}

impl Combine {
    /// Puts each part's elements back at their keys' positions; `fill` where a part
    /// answered fewer elements than it had keys.
    pub fn place<T: Clone>(
        positions: &[Vec<usize>],
        len: usize,
        parts: impl IntoIterator<Item = Vec<T>>,
        fill: T,
    ) -> Vec<T> {
        let mut out = vec![fill; len];
        for (places, items) in positions.iter().zip(parts) {
            for (&place, item) in places.iter().zip(items) {
                out[place] = item;
            }
        }
        out
    }
}

/// The positions of `keys` grouped by owner, one group per owner with keys, in shard
/// order.
pub fn group_by_owner<K: AsRef<[u8]>>(
    keys: &[K],
    owner: &dyn Fn(&[u8]) -> u16,
) -> Vec<(u16, Vec<usize>)> {
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for (position, key) in keys.iter().enumerate() {
        let shard = owner(key.as_ref());
        match groups.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, group)) => group.push(position),
            None => groups.push((shard, vec![position])),
        }
    }
    groups.sort_unstable_by_key(|(shard, _)| *shard);
    groups
}

/// Splits a list of keys by owner: each part built from its keys' owned copies.
pub fn split_keys<P: Payload, C>(
    keys: &[P],
    owner: &dyn Fn(&[u8]) -> u16,
    combine: impl FnOnce(&[(u16, Vec<usize>)]) -> Combine,
    part: impl Fn(Vec<Bytes>) -> C,
) -> Split<C> {
    let groups = group_by_owner(keys, owner);
    let combine = combine(&groups);
    let parts = groups
        .iter()
        .map(|(shard, group)| {
            let owned = group
                .iter()
                .map(|&i| Bytes::copy_from_slice(keys[i].as_ref()))
                .collect();
            (*shard, part(owned))
        })
        .collect();
    Split { parts, combine }
}

/// The combine for commands answering one element per key.
pub fn positions(len: usize) -> impl FnOnce(&[(u16, Vec<usize>)]) -> Combine {
    move |groups| Combine::Positions {
        positions: groups.iter().map(|(_, group)| group.clone()).collect(),
        len,
    }
}

/// A fixed combine, for commands whose parts' replies do not depend on key positions.
pub fn fixed(combine: Combine) -> impl FnOnce(&[(u16, Vec<usize>)]) -> Combine {
    move |_| combine
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_positions_in_shard_order() {
        let keys = [&b"a"[..], b"bb", b"c", b"dd", b"e"];
        let by_length = |key: &[u8]| key.len() as u16;
        assert_eq!(
            group_by_owner(&keys, &by_length),
            vec![(1, vec![0, 2, 4]), (2, vec![1, 3])]
        );
    }

    proptest::proptest! {
        #[test]
        fn grouping_keeps_every_position_once_with_its_owner(
            keys in proptest::collection::vec(".{0,8}", 0..40),
            shards in 1u16..9,
        ) {
            let owner = |key: &[u8]| (key.iter().map(|&b| u32::from(b)).sum::<u32>() % u32::from(shards)) as u16;
            let groups = group_by_owner(&keys, &owner);
            let mut seen: Vec<usize> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..keys.len()).collect::<Vec<_>>());
            for (shard, group) in &groups {
                for &i in group {
                    proptest::prop_assert_eq!(owner(keys[i].as_bytes()), *shard);
                }
            }
        }
    }

    #[test]
    fn placing_restores_the_callers_order() {
        let positions = vec![vec![0, 2], vec![1]];
        let placed = Combine::place(&positions, 3, [vec!["a", "c"], vec!["b"]], "-");
        assert_eq!(placed, vec!["a", "b", "c"]);
    }
}
