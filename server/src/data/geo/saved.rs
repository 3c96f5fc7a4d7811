//! Geo state as the log and snapshots save it: per member and shard, the member's record
//! if this shard's partitions hold it, and its directory entry if this shard is its home.
//!
//! A saved member is the whole of that shard's view of the member, so the last one
//! replayed for a member wins and the order of changes within a batch does not matter.
//! Moves between shards change two shards' views; each shard logs its own.

use h3o::Resolution;
use tessera_protocol::geo::{GeoPoint, AVAILABLE, DEFAULT_GEO_RESOLUTION, OFFERED};

use super::{GeoIndex, GeoShard, Home, Placement, Status};
use crate::data::codec::{Damaged, In, Out};

/// A member's record as its holder keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldState {
    /// Its position.
    pub at: GeoPoint,
    /// Its status word (`available` while offered: the offer is `offered_until`).
    pub status: Box<[u8]>,
    /// When its offer lapses (ms; 0: not offered).
    pub offered_until: u64,
    /// When it is forgotten unless updated (ms; 0: never).
    pub expires_at: u64,
    /// When it was last updated (ms).
    pub updated_at: u64,
    /// Its metadata.
    pub meta: Option<Box<[u8]>>,
}

/// One shard's view of one member of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMember {
    /// The index.
    pub index: Box<[u8]>,
    /// The index's resolution.
    pub resolution: u8,
    /// The member.
    pub name: Box<[u8]>,
    /// Its record, if this shard holds it.
    pub held: Option<HeldState>,
    /// The shard holding it, if this shard is its home.
    pub home: Option<u16>,
}

impl SavedMember {
    /// Writes the saved member.
    pub fn save(&self, out: &mut Out<'_>) {
        out.bytes(&self.index);
        out.byte(self.resolution);
        out.bytes(&self.name);
        match &self.held {
            Some(held) => {
                out.byte(1);
                out.int(i64::from(held.at.lat_e7));
                out.int(i64::from(held.at.lng_e7));
                out.bytes(&held.status);
                out.uint(held.offered_until);
                out.uint(held.expires_at);
                out.uint(held.updated_at);
                out.maybe_bytes(held.meta.as_deref());
            }
            None => out.byte(0),
        }
        out.uint(self.home.map_or(0, |holder| u64::from(holder) + 1));
    }

    /// Reads a saved member `save` wrote.
    ///
    /// # Errors
    /// The bytes are damaged.
    pub fn load(input: &mut In<'_>) -> Result<SavedMember, Damaged> {
        let degrees = |n: i64| i32::try_from(n).map_err(|_| Damaged("coordinate"));
        let index = input.bytes()?.into();
        let resolution = input.byte()?;
        let name = input.bytes()?.into();
        let held = match input.byte()? {
            0 => None,
            1 => Some(HeldState {
                at: GeoPoint {
                    lat_e7: degrees(input.int()?)?,
                    lng_e7: degrees(input.int()?)?,
                },
                status: input.bytes()?.into(),
                offered_until: input.uint()?,
                expires_at: input.uint()?,
                updated_at: input.uint()?,
                meta: input.maybe_bytes()?.map(Into::into),
            }),
            _ => return Err(Damaged("bad held marker")),
        };
        let home = match input.uint()? {
            0 => None,
            n => Some(u16::try_from(n - 1).map_err(|_| Damaged("holder shard"))?),
        };
        Ok(SavedMember {
            index,
            resolution,
            name,
            held,
            home,
        })
    }
}

impl GeoIndex {
    /// Notes that `name`'s record or directory entry changed, if the log listens.
    pub(super) fn touch(&mut self, name: &[u8]) {
        if let Some(touched) = self.touched.as_mut() {
            touched.push(name.into());
        }
    }

    fn held_state(&self, name: &[u8]) -> Option<HeldState> {
        let slot = self.find(name)?;
        let member = &self.members[slot as usize];
        let (status, offered_until) = match member.status {
            Status::Offered(until) => (AVAILABLE, until),
            status => (self.status_word(status), 0),
        };
        Some(HeldState {
            at: self.position(member.cell, slot),
            status: status.into(),
            offered_until,
            expires_at: member.expires_at,
            updated_at: member.updated_at,
            meta: member.meta.clone(),
        })
    }

    fn saved(&self, index: &[u8], name: &[u8]) -> SavedMember {
        SavedMember {
            index: index.into(),
            resolution: u8::from(self.resolution),
            name: name.into(),
            held: self.held_state(name),
            home: self.homes.get(name).map(|home| home.holder),
        }
    }

    /// Makes this shard's view of a member what `saved` says.
    fn restore(&mut self, saved: &SavedMember) {
        if let Some(slot) = self.find(&saved.name) {
            self.unlink(slot);
        }
        if let Some(held) = &saved.held {
            let word: &[u8] = match &*held.status {
                OFFERED => AVAILABLE,
                word => word,
            };
            let placement = Placement {
                member: &*saved.name,
                at: held.at,
                cell: None,
                status: Some(word),
                offered_until: (held.offered_until != 0).then_some(held.offered_until),
                expires_at: Some(held.expires_at),
                meta: held.meta.as_deref(),
            };
            // A saved status word was accepted once, so it fits the table again.
            let _ = self.place(placement, held.updated_at);
        }
        match saved.home {
            Some(holder) => {
                self.homes.insert(
                    saved.name.clone(),
                    Home {
                        holder,
                        moving: false,
                    },
                );
            }
            None => {
                self.homes.remove(&saved.name);
            }
        }
    }
}

impl GeoShard {
    /// Notes every change from now on, for `take_touched`.
    pub fn start_journal(&mut self) {
        self.journaled = true;
        for index in self.indexes.values_mut() {
            index.touched.get_or_insert_with(Vec::new);
        }
    }

    /// Whether the log listens.
    pub fn is_journaled(&self) -> bool {
        self.journaled
    }

    /// The views of every member changed since the last call, as they are now.
    pub fn take_touched(&mut self) -> Vec<SavedMember> {
        let mut saved = Vec::new();
        for (name, index) in &mut self.indexes {
            let Some(touched) = index.touched.as_mut().filter(|t| !t.is_empty()) else {
                continue;
            };
            let mut members = std::mem::take(touched);
            members.sort_unstable();
            members.dedup();
            saved.extend(members.iter().map(|member| index.saved(name, member)));
        }
        saved
    }

    /// Every member's view on this shard, for a snapshot or a move to another shard count.
    pub fn save_all(&self) -> Vec<SavedMember> {
        self.save_indexes(|_| true)
    }

    /// The views of the members this shard holds (not mere directory entries) in the
    /// indexes `wanted` names: what another node needs to take those indexes over.
    pub fn save_held(&self, wanted: impl Fn(&[u8]) -> bool) -> Vec<SavedMember> {
        let mut saved = Vec::new();
        for (name, index) in self.indexes.iter().filter(|(name, _)| wanted(name)) {
            saved.extend(
                index
                    .members
                    .iter()
                    .map(|(_, m)| index.saved(name, &m.name)),
            );
        }
        saved
    }

    /// Removes the indexes `doomed` names, with their configured resolutions; answers
    /// how many members they held here.
    pub fn remove_indexes(&mut self, doomed: impl Fn(&[u8]) -> bool) -> usize {
        let mut members = 0;
        self.indexes.retain(|name, index| {
            let keep = !doomed(name);
            if !keep {
                members += index.members.len();
            }
            keep
        });
        self.resolutions.retain(|name, _| !doomed(name));
        members
    }

    fn save_indexes(&self, wanted: impl Fn(&[u8]) -> bool) -> Vec<SavedMember> {
        let mut saved = Vec::new();
        for (name, index) in self.indexes.iter().filter(|(name, _)| wanted(name)) {
            let mut members: Vec<&[u8]> = index.members.iter().map(|(_, m)| &*m.name).collect();
            members.extend(index.homes.keys().map(|k| &**k));
            members.sort_unstable();
            members.dedup();
            saved.extend(members.into_iter().map(|member| index.saved(name, member)));
        }
        saved
    }

    /// Makes this shard's view of a member what `saved` says, creating its index (at the
    /// saved resolution) if need be.
    pub fn restore(&mut self, saved: &SavedMember) {
        if !self.indexes.contains_key(&saved.index) {
            let resolution = Resolution::try_from(saved.resolution).unwrap_or_else(|_| {
                Resolution::try_from(DEFAULT_GEO_RESOLUTION).expect("valid default")
            });
            self.resolutions.insert(saved.index.clone(), resolution);
        }
        self.index(&saved.index).restore(saved);
    }
}
