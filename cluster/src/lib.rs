//! Key hashing and routing: the pure functions that say which slot, node and shard own a key.
//!
//! `slot = CRC16(tag(key)) mod 16384`, Redis Cluster's function to the bit, so that Redis
//! Cluster clients route the same way. A node's shard for a slot is `slot * shards / 16384`
//! (contiguous slot ranges per shard), and which node owns a slot is the cluster's
//! [`Topology`], a table computed by rendezvous hashing and committed through Raft.
//! docs/PROTOCOL.md §8 repeats this so that clients in any language can route.

pub mod geo;
pub mod topology;

pub use topology::{slot_runs, Move, NodeId, NodeInfo, SlotRange, Topology};

/// Slots in the key space, as in Redis Cluster.
pub const SLOT_COUNT: u16 = 16_384;

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0), the CRC Redis Cluster hashes with;
/// slice-by-16 tables (8 KiB), which cut a 44-byte key from ~114 ns to a fraction of it
/// (`cargo bench -p tessera-cluster --bench routing`).
const CRC16: crc::Crc<u16, crc::Table<16>> =
    crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);

/// Returns the bytes that are hashed for `key`: the `{hash tag}` if it has a non-empty one.
///
/// As in Redis Cluster: the tag is what lies between the first `{` and the first `}` after
/// it; `{}` or an unclosed `{` means the whole key is hashed.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The slot of a key: CRC-16/XMODEM of its hash tag, modulo 16,384.
pub fn key_slot(key: &[u8]) -> u16 {
    CRC16.checksum(hash_tag(key)) & (SLOT_COUNT - 1)
}

/// The shard of a node with `shards` shards that holds `slot`: `slot * shards / 16384`.
pub fn shard_of_slot(slot: u16, shards: u16) -> u16 {
    debug_assert!(shards > 0, "a node has at least one shard");
    ((u32::from(slot) * u32::from(shards)) >> 14) as u16
}

/// The shard that owns `key` on a node with `shards` shards; a one-shard node owns every
/// key without hashing it.
pub fn shard_for_key(key: &[u8], shards: u16) -> u16 {
    if shards == 1 {
        return 0;
    }
    shard_of_slot(key_slot(key), shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_tag_follows_redis_cluster_rules() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"no-tag"), b"no-tag");
        assert_eq!(hash_tag(b"open{only"), b"open{only");
    }

    #[test]
    fn known_vectors_pin_the_function() {
        // These values are quoted in docs/PROTOCOL.md; changing them breaks every client.
        // CRC16("123456789") = 0x31C3 is the check value in Redis's cluster specification;
        // the slots below are what `redis-cli CLUSTER KEYSLOT` answers for the same keys.
        assert_eq!(CRC16.checksum(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"user:42"), 15_880);
        assert_eq!(key_slot(b"{user:42}.cart"), 15_880);
        assert_eq!(key_slot(b"key:0"), 2_592);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"foo{}{bar}"), 8_363);
        assert_eq!(shard_for_key(b"user:42", 2), 1);
        assert_eq!(shard_for_key(b"user:42", 4), 3);
        assert_eq!(shard_for_key(b"foo", 4), 2);
        assert_eq!(shard_of_slot(0, 4), 0);
        assert_eq!(shard_of_slot(SLOT_COUNT - 1, 4), 3);
    }

    #[test]
    fn keys_spread_evenly_over_shards() {
        let shards = 8u16;
        let mut counts = vec![0u32; usize::from(shards)];
        for i in 0..80_000 {
            counts[usize::from(shard_for_key(format!("key:{i}").as_bytes(), shards))] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "uneven spread: {count}");
        }
    }

    proptest! {
        #[test]
        fn slot_and_shard_are_in_range(key: Vec<u8>, shards in 1u16..1024) {
            prop_assert!(key_slot(&key) < SLOT_COUNT);
            prop_assert!(shard_for_key(&key, shards) < shards);
        }
    }
}
