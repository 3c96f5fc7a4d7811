//! Key hashing and routing: the one pure function that says which shard owns a key.
//!
//! `owner = shard_of(key_hash(key), shards)`, where `key_hash` is XXH64 (seed 0) of the key
//! or of its `{hash tag}`, and `shard_of` maps the low 32 bits of the hash onto the shard
//! count by multiply-shift. The high bits are left for placing keys on a node ring, so a
//! node's contiguous slice of the ring still spreads evenly over its shards.
//! docs/PROTOCOL.md repeats this so that clients in any language can route.

pub mod geo;

use xxhash_rust::xxh64::xxh64;

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

/// The 64-bit routing hash of a key: XXH64 with seed 0 over its hash tag.
pub fn key_hash(key: &[u8]) -> u64 {
    xxh64(hash_tag(key), 0)
}

/// Maps a routing hash onto `shards` shards: `(low32(hash) * shards) >> 32`.
pub fn shard_of(hash: u64, shards: u16) -> u16 {
    debug_assert!(shards > 0, "a node has at least one shard");
    (((hash & 0xffff_ffff) * u64::from(shards)) >> 32) as u16
}

/// The shard that owns `key` on a node with `shards` shards.
pub fn shard_for_key(key: &[u8], shards: u16) -> u16 {
    shard_of(key_hash(key), shards)
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
        assert_eq!(key_hash(b""), 0xef46_db37_51d8_e999);
        assert_eq!(key_hash(b"user:42"), 0xdc1f_ea7d_a8d2_d1c2);
        assert_eq!(key_hash(b"key:0"), 0x5913_602a_ebc9_2ee5);
        assert_eq!(shard_for_key(b"user:42", 2), 1);
        assert_eq!(shard_for_key(b"user:42", 4), 2);
        assert_eq!(shard_for_key(b"key:0", 4), 3);
        assert_eq!(shard_for_key(b"foo{}{bar}", 4), 0);
        assert_eq!(shard_of(0xef46_db37_51d8_e999, 4), 1);
        assert_eq!(
            shard_for_key(b"{user:42}.cart", 8),
            shard_for_key(b"user:42", 8)
        );
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
        fn shard_is_in_range(hash: u64, shards in 1u16..1024) {
            prop_assert!(shard_of(hash, shards) < shards);
        }
    }
}
