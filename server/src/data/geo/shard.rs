//! Every geo index a shard holds, by name, and the cell shapes their searches share.

use h3o::Resolution;
use hashbrown::HashMap;
use tessera_protocol::geo::DEFAULT_GEO_RESOLUTION;

use super::*;

/// Every index's state on one shard, and the cell shapes its searches share.
#[derive(Default)]
pub struct GeoShard {
    pub(super) indexes: HashMap<Box<[u8]>, GeoIndex>,
    /// Whether the log listens: indexes made from now on note what changes.
    pub(super) journaled: bool,
    /// Resolutions set by GEO.CREATE, for indexes that have no state here yet.
    pub(super) resolutions: HashMap<Box<[u8]>, Resolution>,
    /// Cell shapes for searches at any resolution.
    pub shapes: Shapes,
}

impl GeoShard {
    /// The index and the shape cache, for searches.
    pub fn get_with_shapes(&mut self, index: &[u8]) -> (Option<&GeoIndex>, &mut Shapes) {
        (self.indexes.get(index), &mut self.shapes)
    }

    /// The index, created with its configured (or the default) resolution if missing.
    pub fn index(&mut self, index: &[u8]) -> &mut GeoIndex {
        if !self.indexes.contains_key(index) {
            let resolution = self.resolutions.get(index).copied().unwrap_or_else(|| {
                Resolution::try_from(DEFAULT_GEO_RESOLUTION).expect("valid default")
            });
            let mut created = GeoIndex::new(resolution);
            if self.journaled {
                created.touched = Some(Vec::new());
            }
            self.indexes.insert(index.into(), created);
        }
        self.indexes.get_mut(index).expect("just inserted")
    }

    /// GEO.CREATE on this shard: records the resolution; CONFLICT if the index already
    /// holds members here at another resolution.
    pub fn create(&mut self, index: &[u8], resolution: Resolution) -> Value {
        if let Some(existing) = self.indexes.get_mut(index) {
            if existing.resolution != resolution {
                if existing.members.is_empty() {
                    existing.resolution = resolution;
                } else {
                    return Value::error(
                        ErrorCode::Conflict,
                        format!(
                            "index already holds members at resolution {}",
                            u8::from(existing.resolution)
                        ),
                    );
                }
            }
        }
        self.resolutions.insert(index.into(), resolution);
        Value::Ok
    }

    /// Sweeps a little of every index; returns the lapsed members removed, by index.
    pub fn sweep(&mut self, budget: usize, now: u64) -> Vec<(Bytes, Bytes)> {
        let mut removed = Vec::new();
        for (name, index) in &mut self.indexes {
            for member in index.sweep(budget, now) {
                removed.push((Bytes::copy_from_slice(name), member));
            }
        }
        removed
    }

    /// Approximate heap bytes of every index.
    pub fn heap_bytes(&self) -> usize {
        self.indexes
            .values()
            .map(GeoIndex::heap_bytes)
            .sum::<usize>()
            + self.shapes.heap_bytes()
    }

    /// Members held by this shard's partitions, all indexes together.
    pub fn members(&self) -> usize {
        self.indexes.values().map(|i| i.members.len()).sum()
    }
}
