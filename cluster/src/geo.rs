//! Geo partitions: which coarse H3 cell a position falls in, and which key (so which shard)
//! holds that partition of an index.

use h3o::{LatLng, Resolution};

use crate::shard_for_key;

/// Resolution of the cells an index is partitioned by: about 250 km² each (8.5 km edges),
/// so a city spreads over tens of partitions and a 2 km search touches one to four.
pub const PARTITION_RESOLUTION: Resolution = Resolution::Five;

/// The partition (a resolution-5 H3 cell, as its 64-bit index) holding a position given
/// in degrees; `None` for coordinates that are not a position.
pub fn partition_of(lat: f64, lng: f64) -> Option<u64> {
    let position = LatLng::new(lat, lng).ok()?;
    Some(u64::from(position.to_cell(PARTITION_RESOLUTION)))
}

/// The key a partition of `index` is stored under: the index name, a 0xff separator and
/// the cell. A `{hash tag}` in the index name therefore pins every partition to one shard.
pub fn partition_key(index: &[u8], partition: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(index.len() + 9);
    key.extend_from_slice(index);
    key.push(0xff);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The shard holding partition `partition` of `index`.
pub fn partition_shard(index: &[u8], partition: u64, shards: u16) -> u16 {
    shard_for_key(&partition_key(index, partition), shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_points_share_a_partition_and_far_ones_do_not() {
        let berlin = partition_of(52.5200, 13.4050).unwrap();
        assert_eq!(partition_of(52.5201, 13.4051), Some(berlin));
        assert_ne!(partition_of(48.8566, 2.3522), Some(berlin));
        assert_eq!(partition_of(f64::NAN, 0.0), None);
    }

    #[test]
    fn a_hash_tag_pins_every_partition_of_an_index() {
        let (a, b) = (
            partition_of(1.0, 1.0).unwrap(),
            partition_of(50.0, 9.0).unwrap(),
        );
        assert_eq!(
            partition_shard(b"{eu}drivers", a, 16),
            partition_shard(b"{eu}drivers", b, 16)
        );
    }
}
