//! A hash's fields: one packed buffer for small hashes, a table past Redis's listpack
//! limits, each field with an optional deadline.

use crate::data::codec::{Damaged, In, Out};

/// Deadline meaning "never expires".
pub(super) const NEVER: u64 = 0;
/// Longest field name or value a packed hash holds.
const PACKED_MAX_BYTES: usize = 64;
/// Most fields a packed hash holds before it becomes a table.
const PACKED_MAX_FIELDS: usize = 128;
/// One field as read out of a hash.
pub(super) struct Field<'a> {
    pub(super) name: &'a [u8],
    pub(super) value: &'a [u8],
    /// Milliseconds on the server clock, or `NEVER`.
    pub(super) deadline: u64,
}

/// A field's value and deadline in the table form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    value: Box<[u8]>,
    deadline: u64,
}

/// The table form: fields, and how many of them have a deadline, so a hash without field
/// expiry never scans for one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldTable {
    fields: hashbrown::HashMap<Box<[u8]>, Slot>,
    expiring: usize,
    /// Bytes of every name and value, kept as fields change: memory accounting asks after
    /// each write, and summing a large hash each time made writes to it linear.
    named: usize,
}

/// A hash's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldMap {
    /// Fields in one buffer (see `repack` for the layout); empty when the hash is.
    Packed(Box<[u8]>),
    /// A table, for hashes past the packed limits.
    Table(Box<FieldTable>),
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap::Packed(Box::default())
    }
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push(value as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn take_varint(buf: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    while let Some(&byte) = buf.get(*at) {
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    value
}

/// Where a packed buffer's parts are: its count of fields with a deadline, where the
/// directory starts and where the values start.
struct Layout {
    expiring: u64,
    directory: usize,
    values: usize,
}

fn layout(buf: &[u8]) -> Layout {
    let mut at = 0;
    let expiring = take_varint(buf, &mut at);
    let directory_len = take_varint(buf, &mut at) as usize;
    Layout {
        expiring,
        directory: at,
        values: at + directory_len,
    }
}

/// One directory entry, with where its value lies.
struct Entry {
    deadline_at: usize,
    deadline: u64,
    name: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

/// Walks the directory: names and deadlines lie together, apart from the values, so a
/// lookup reads a cache line or two of names rather than every value on the way.
fn entries(buf: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    let parts = layout(buf);
    let (mut at, mut value_at) = (parts.directory, parts.values);
    std::iter::from_fn(move || {
        if at >= parts.values {
            return None;
        }
        let deadline_at = at;
        let deadline = take_varint(buf, &mut at);
        let name_len = take_varint(buf, &mut at) as usize;
        let name = at..at + name_len;
        at += name_len;
        let value_len = take_varint(buf, &mut at) as usize;
        let value = value_at..value_at + value_len;
        value_at += value_len;
        Some(Entry {
            deadline_at,
            deadline,
            name,
            value,
        })
    })
}

/// Reads the packed entries in order.
fn packed(buf: &[u8]) -> impl Iterator<Item = Field<'_>> {
    entries(buf).map(move |entry| Field {
        name: &buf[entry.name],
        value: &buf[entry.value],
        deadline: entry.deadline,
    })
}

/// A packed buffer holding `fields`: `expiring:uvarint directory_len:uvarint`, the
/// directory (`deadline:uvarint name_len:uvarint name value_len:uvarint` per field), then
/// the values one after another.
fn repack<'a>(fields: impl Iterator<Item = Field<'a>>) -> Box<[u8]> {
    let (mut directory, mut values) = (Vec::new(), Vec::new());
    let mut expiring = 0;
    for field in fields {
        expiring += u64::from(field.deadline != NEVER);
        put_varint(&mut directory, field.deadline);
        put_varint(&mut directory, field.name.len() as u64);
        directory.extend_from_slice(field.name);
        put_varint(&mut directory, field.value.len() as u64);
        values.extend_from_slice(field.value);
    }
    if directory.is_empty() {
        return Box::default();
    }
    let mut out = Vec::with_capacity(directory.len() + values.len() + 4);
    put_varint(&mut out, expiring);
    put_varint(&mut out, directory.len() as u64);
    out.extend_from_slice(&directory);
    out.extend_from_slice(&values);
    out.into_boxed_slice()
}

fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Rewrites a live field in place when its new value and deadline take the bytes the old
/// ones took and it keeps (or keeps lacking) a deadline: the usual HSET of a same-size
/// value and HINCRBY of a same-width number. `false` (and nothing changed) otherwise.
fn overwrite(buf: &mut [u8], name: &[u8], value: &[u8], deadline: u64, now: u64) -> bool {
    let Some(entry) = entries(buf).find(|entry| &buf[entry.name.clone()] == name) else {
        return false;
    };
    let fits = live(entry.deadline, now)
        && entry.value.len() == value.len()
        && (entry.deadline == NEVER) == (deadline == NEVER)
        && varint_len(entry.deadline) == varint_len(deadline);
    if !fits {
        return false;
    }
    let mut encoded = Vec::with_capacity(10);
    put_varint(&mut encoded, deadline);
    buf[entry.deadline_at..entry.deadline_at + encoded.len()].copy_from_slice(&encoded);
    buf[entry.value].copy_from_slice(value);
    true
}

fn live(deadline: u64, now: u64) -> bool {
    deadline == NEVER || deadline > now
}

impl FieldMap {
    /// Saves every field with its deadline.
    pub fn save(&self, out: &mut Out<'_>) {
        let fields: Vec<Field<'_>> = self.iter().collect();
        out.uint(fields.len() as u64);
        for field in fields {
            out.bytes(field.name);
            out.bytes(field.value);
            out.uint(field.deadline);
        }
    }

    /// Reads fields `save` wrote.
    ///
    /// # Errors
    /// The bytes are damaged.
    pub fn load(input: &mut In<'_>) -> Result<FieldMap, Damaged> {
        let mut fields = FieldMap::default();
        for _ in 0..input.count()? {
            let (name, value, deadline) = (input.bytes()?, input.bytes()?, input.uint()?);
            fields.put(name, value, deadline, 0);
        }
        Ok(fields)
    }

    fn iter(&self) -> Box<dyn Iterator<Item = Field<'_>> + '_> {
        match self {
            FieldMap::Packed(buf) => Box::new(packed(buf)),
            FieldMap::Table(table) => Box::new(table.fields.iter().map(|(name, slot)| Field {
                name,
                value: &slot.value,
                deadline: slot.deadline,
            })),
        }
    }

    /// Live fields at `now`, in storage order.
    pub(super) fn live(&self, now: u64) -> impl Iterator<Item = Field<'_>> {
        self.iter().filter(move |field| live(field.deadline, now))
    }

    pub(super) fn find(&self, name: &[u8], now: u64) -> Option<Field<'_>> {
        match self {
            FieldMap::Packed(buf) => packed(buf).find(|f| f.name == name),
            FieldMap::Table(table) => table.fields.get_key_value(name).map(|(name, slot)| Field {
                name,
                value: &slot.value,
                deadline: slot.deadline,
            }),
        }
        .filter(|field| live(field.deadline, now))
    }

    /// Live fields at `now`.
    pub fn len(&self, now: u64) -> usize {
        self.live(now).count()
    }

    /// Whether no field is live at `now`.
    pub fn is_empty(&self, now: u64) -> bool {
        match self {
            FieldMap::Table(table) if table.expiring == 0 => table.fields.is_empty(),
            _ => self.live(now).next().is_none(),
        }
    }

    /// The earliest field deadline, if any field has one; free for hashes without.
    pub fn earliest_deadline(&self) -> Option<u64> {
        let expiring = match self {
            FieldMap::Packed(buf) => layout(buf).expiring as usize,
            FieldMap::Table(table) => table.expiring,
        };
        if expiring == 0 {
            return None;
        }
        self.iter()
            .map(|f| f.deadline)
            .filter(|&d| d != NEVER)
            .min()
    }

    /// Writes `value` (and `deadline`) to `name`; `true` if the field is new.
    pub(super) fn put(&mut self, name: &[u8], value: &[u8], deadline: u64, now: u64) -> bool {
        if let FieldMap::Table(table) = self {
            table.expiring += usize::from(deadline != NEVER);
            table.named += value.len();
            // An overwrite keeps the field's name and, when the length matches, its value's
            // allocation: HSET over existing fields allocates nothing.
            return match table.fields.entry_ref(name) {
                hashbrown::hash_map::EntryRef::Occupied(mut field) => {
                    let slot = field.get_mut();
                    table.named -= slot.value.len();
                    table.expiring -= usize::from(slot.deadline != NEVER);
                    let was_live = live(slot.deadline, now);
                    if slot.value.len() == value.len() {
                        slot.value.copy_from_slice(value);
                    } else {
                        slot.value = value.into();
                    }
                    slot.deadline = deadline;
                    !was_live
                }
                hashbrown::hash_map::EntryRef::Vacant(field) => {
                    table.named += name.len();
                    let slot = Slot {
                        value: value.into(),
                        deadline,
                    };
                    field.insert_with_key(name.into(), slot);
                    true
                }
            };
        }
        let FieldMap::Packed(buf) = self else {
            return false;
        };
        if overwrite(buf, name, value, deadline, now) {
            return false;
        }
        let mut new = true;
        let mut fields = 0;
        let written = Field {
            name,
            value,
            deadline,
        };
        let kept = packed(buf).filter(|field| {
            if field.name == name {
                new = !live(field.deadline, now);
                return false;
            }
            fields += 1;
            true
        });
        let out = repack(kept.chain(std::iter::once(written)));
        *buf = out;
        if fields + 1 > PACKED_MAX_FIELDS
            || name.len() > PACKED_MAX_BYTES
            || value.len() > PACKED_MAX_BYTES
        {
            self.make_table();
        }
        new
    }

    fn make_table(&mut self) {
        let mut table = FieldTable::default();
        for field in self.iter() {
            table.expiring += usize::from(field.deadline != NEVER);
            table.named += field.name.len() + field.value.len();
            let slot = Slot {
                value: field.value.into(),
                deadline: field.deadline,
            };
            table.fields.insert(field.name.into(), slot);
        }
        *self = FieldMap::Table(Box::new(table));
    }

    /// Keeps the fields `keep` says to, rewriting a packed buffer only if one goes.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Field<'_>) -> bool) -> usize {
        match self {
            FieldMap::Table(table) => {
                let (before, mut dropped_expiring, mut dropped_bytes) = (table.fields.len(), 0, 0);
                table.fields.retain(|name, slot| {
                    let kept = keep(&Field {
                        name,
                        value: &slot.value,
                        deadline: slot.deadline,
                    });
                    if !kept {
                        dropped_expiring += usize::from(slot.deadline != NEVER);
                        dropped_bytes += name.len() + slot.value.len();
                    }
                    kept
                });
                table.expiring -= dropped_expiring;
                table.named -= dropped_bytes;
                before - table.fields.len()
            }
            FieldMap::Packed(buf) => {
                if packed(buf).all(|f| keep(&f)) {
                    return 0;
                }
                let before = packed(buf).count();
                let out = repack(packed(buf).filter(|f| keep(f)));
                *buf = out;
                before - packed(buf).count()
            }
        }
    }

    /// Drops fields whose deadline has passed.
    pub(super) fn purge(&mut self, now: u64) {
        let earliest = self.earliest_deadline();
        self.purge_given(earliest, now);
    }

    /// `purge`, for a caller that already has the earliest deadline at hand.
    pub(super) fn purge_given(&mut self, earliest: Option<u64>, now: u64) {
        if earliest.is_some_and(|d| d <= now) {
            self.retain(|f| live(f.deadline, now));
        }
    }

    /// Sets a live field's deadline (`NEVER` clears it); `false` if the field is missing.
    pub(super) fn set_deadline(&mut self, name: &[u8], deadline: u64, now: u64) -> bool {
        match self {
            FieldMap::Table(table) => match table.fields.get_mut(name) {
                Some(slot) if live(slot.deadline, now) => {
                    table.expiring = table.expiring + usize::from(deadline != NEVER)
                        - usize::from(slot.deadline != NEVER);
                    slot.deadline = deadline;
                    true
                }
                _ => false,
            },
            FieldMap::Packed(_) => {
                let Some(value) = self.find(name, now).map(|f| f.value.to_vec()) else {
                    return false;
                };
                self.put(name, &value, deadline, now);
                true
            }
        }
    }

    /// Heap bytes owned, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            FieldMap::Packed(buf) => buf.len(),
            FieldMap::Table(table) => {
                let entry = std::mem::size_of::<(Box<[u8]>, Slot)>() + 1;
                std::mem::size_of::<FieldTable>() + table.fields.capacity() * entry + table.named
            }
        }
    }
}
