//! Inventory: stock, reservations with TTL and idempotent ids, carts.

use bytes::{BufMut, Bytes, BytesMut};

use super::arg::*;
use super::split::{group_by_owner, positions, Split};
use super::{CommandSpec, KeySpec};
use crate::error::{DecodeError, ErrorCode};
use crate::value::ErrorReply;
use crate::wire::{put_bytes, put_ivarint, put_uvarint, Payload, Reader};

/// The family's opcodes; stable once published.
pub mod opcode {
    /// INV.SET
    pub const INV_SET: u16 = 0x0070;
    /// INV.ADJUST
    pub const INV_ADJUST: u16 = 0x0071;
    /// INV.GET
    pub const INV_GET: u16 = 0x0072;
    /// INV.RESERVE
    pub const INV_RESERVE: u16 = 0x0073;
    /// INV.CONFIRM
    pub const INV_CONFIRM: u16 = 0x0074;
    /// INV.RELEASE
    pub const INV_RELEASE: u16 = 0x0075;
    /// INV.RESERVE.MULTI
    pub const INV_RESERVE_MULTI: u16 = 0x0076;
    /// INV.STORE
    pub const INV_STORE: u16 = 0x0077;
}

/// The family's rows of the command table, in opcode order.
pub(super) const ROWS: &[CommandSpec] = &[
    CommandSpec {
        opcode: opcode::INV_SET,
        name: "INV.SET",
        syntax: "sku ON_HAND n [LOW m]",
        wire: "sku:bytes on_hand:ivarint low:uvarint (0 = keep, m + 1 = low stock at m or fewer available)",
        reply: "MAP {on_hand, reserved, available, reservations}; CONFLICT if n is below what is reserved",
        summary: "Sets a SKU's units on hand, keeping its reservations.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_ADJUST,
        name: "INV.ADJUST",
        syntax: "sku delta",
        wire: "sku:bytes delta:ivarint",
        reply: "MAP {on_hand, reserved, available, reservations}; CONFLICT if on hand would fall below reserved",
        summary: "Adds to (restock) or takes from (shrinkage) a SKU's units on hand.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_GET,
        name: "INV.GET",
        syntax: "sku",
        wire: "sku:bytes",
        reply: "MAP {on_hand, reserved, available, reservations}, or NIL",
        summary: "Reports a SKU's units on hand, reserved and available, and its active reservations.",
        writes: false,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_RESERVE,
        name: "INV.RESERVE",
        syntax: "sku qty TTL seconds [ID id]",
        wire: "sku:bytes qty:uvarint ttl_ms:uvarint has_id:u8 [id:bytes]",
        reply: "MAP {ok: BOOL, reservation: BYTES sku#id (ok), state: TEXT active|confirmed (ok), available: INT}",
        summary: "Reserves qty units for a time unless fewer are available; with ID, a retry returns the same reservation.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_CONFIRM,
        name: "INV.CONFIRM",
        syntax: "reservation",
        wire: "sku:bytes id:bytes (the reservation sku#id, split at its last #)",
        reply: "OK; NOT_FOUND if the reservation expired, was released or never existed",
        summary: "Turns a reservation into a sale: its units leave on hand and reserved.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_RELEASE,
        name: "INV.RELEASE",
        syntax: "reservation",
        wire: "sku:bytes id:bytes",
        reply: "OK; NOT_FOUND as for INV.CONFIRM",
        summary: "Gives a reservation's units back.",
        writes: true,
        keys: KeySpec::Single,
    },
    CommandSpec {
        opcode: opcode::INV_RESERVE_MULTI,
        name: "INV.RESERVE.MULTI",
        syntax: "TTL seconds sku qty [sku qty ...]",
        wire: "ttl_ms:uvarint count:uvarint (sku:bytes qty:uvarint)*count",
        reply: "MAP {ok: BOOL, reservations: ARRAY of BYTES (ok), short: ARRAY of BYTES skus short of stock}; CROSS_SHARD if the SKUs span shards",
        summary: "Reserves every line of a cart or none; the SKUs must share a shard (a {hash tag}).",
        writes: true,
        keys: KeySpec::Many,
    },
    CommandSpec {
        opcode: opcode::INV_STORE,
        name: "INV.STORE",
        syntax: "store",
        wire: "store:bytes (a hash tag: the SKUs {store}:...)",
        reply: "MAP {skus: INT, sold_out: INT, low_stock: INT}",
        summary: "Counts a store's SKUs, those sold out (nothing available) and those at or below their low-stock mark.",
        writes: false,
        keys: KeySpec::Single,
    },
];

/// Separates a reservation handle, `sku#id`, at its last `#`.
pub fn split_reservation_handle(handle: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = handle.iter().rposition(|&b| b == b'#')?;
    let (sku, id) = (&handle[..at], &handle[at + 1..]);
    (!sku.is_empty() && !id.is_empty()).then_some((sku, id))
}

/// A request of this family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryCommand<P = Bytes> {
    /// INV.SET sku ON_HAND n [LOW m]
    Set {
        /// SKU.
        sku: P,
        /// Units on hand.
        on_hand: i64,
        /// Low-stock mark: the SKU counts as low when at most this many are available.
        low: Option<u64>,
    },
    /// INV.ADJUST sku delta
    Adjust {
        /// SKU.
        sku: P,
        /// Units added (negative: removed).
        delta: i64,
    },
    /// INV.GET sku
    Get(P),
    /// INV.RESERVE sku qty TTL seconds [ID id]
    Reserve {
        /// SKU.
        sku: P,
        /// Units to reserve.
        qty: u64,
        /// Reservation lifetime in milliseconds.
        ttl_ms: u64,
        /// Caller's reservation id, making retries idempotent.
        id: Option<P>,
    },
    /// INV.CONFIRM reservation
    Confirm {
        /// SKU.
        sku: P,
        /// Reservation id.
        id: P,
    },
    /// INV.RELEASE reservation
    Release {
        /// SKU.
        sku: P,
        /// Reservation id.
        id: P,
    },
    /// INV.RESERVE.MULTI TTL seconds sku qty ...
    ReserveMulti {
        /// Reservation lifetime in milliseconds.
        ttl_ms: u64,
        /// Cart lines.
        items: Vec<(P, u64)>,
    },
    /// INV.STORE store
    Store(P),
}

impl<P: Payload> InventoryCommand<P> {
    /// The command's opcode.
    pub fn opcode(&self) -> u16 {
        match self {
            InventoryCommand::Set { .. } => opcode::INV_SET,
            InventoryCommand::Adjust { .. } => opcode::INV_ADJUST,
            InventoryCommand::Get(_) => opcode::INV_GET,
            InventoryCommand::Reserve { .. } => opcode::INV_RESERVE,
            InventoryCommand::Confirm { .. } => opcode::INV_CONFIRM,
            InventoryCommand::Release { .. } => opcode::INV_RELEASE,
            InventoryCommand::ReserveMulti { .. } => opcode::INV_RESERVE_MULTI,
            InventoryCommand::Store(_) => opcode::INV_STORE,
        }
    }

    /// The single key this command touches, for `KeySpec::Single` commands.
    pub fn single_key(&self) -> Option<&P> {
        match self {
            InventoryCommand::Set { sku, .. }
            | InventoryCommand::Adjust { sku, .. }
            | InventoryCommand::Get(sku)
            | InventoryCommand::Reserve { sku, .. }
            | InventoryCommand::Confirm { sku, .. }
            | InventoryCommand::Release { sku, .. }
            | InventoryCommand::Store(sku) => Some(sku),
            InventoryCommand::ReserveMulti { .. } => None,
        }
    }

    /// How the command splits across shards: a cart by the owner of each SKU. A cart is
    /// all-or-nothing on one shard only, so the server refuses one that spans shards and
    /// the client runs the parts as a saga.
    pub fn split(&self, owner: &dyn Fn(&[u8]) -> u16) -> Option<Split<InventoryCommand<Bytes>>> {
        let InventoryCommand::ReserveMulti { ttl_ms, items } = self else {
            return None;
        };
        let skus: Vec<&[u8]> = items.iter().map(|(sku, _)| sku.as_ref()).collect();
        let groups = group_by_owner(&skus, owner);
        let combine = positions(items.len())(&groups);
        let parts = groups
            .into_iter()
            .map(|(shard, group)| {
                let lines = group
                    .iter()
                    .map(|&i| (Bytes::copy_from_slice(items[i].0.as_ref()), items[i].1));
                let part = InventoryCommand::ReserveMulti {
                    ttl_ms: *ttl_ms,
                    items: lines.collect(),
                };
                (shard, part)
            })
            .collect();
        Some(Split { parts, combine })
    }

    /// Appends the arguments (the body after the opcode).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            InventoryCommand::Set { sku, on_hand, low } => {
                put_bytes(buf, sku.as_ref());
                put_ivarint(buf, *on_hand);
                put_uvarint(buf, low.map_or(0, |m| m.saturating_add(1)));
            }
            InventoryCommand::Adjust { sku, delta } => {
                put_bytes(buf, sku.as_ref());
                put_ivarint(buf, *delta);
            }
            InventoryCommand::Store(store) => put_bytes(buf, store.as_ref()),
            InventoryCommand::Get(sku) => put_bytes(buf, sku.as_ref()),
            InventoryCommand::Reserve {
                sku,
                qty,
                ttl_ms,
                id,
            } => {
                put_bytes(buf, sku.as_ref());
                put_uvarint(buf, *qty);
                put_uvarint(buf, *ttl_ms);
                match id {
                    Some(id) => {
                        buf.put_u8(1);
                        put_bytes(buf, id.as_ref());
                    }
                    None => buf.put_u8(0),
                }
            }
            InventoryCommand::Confirm { sku, id } | InventoryCommand::Release { sku, id } => {
                put_bytes(buf, sku.as_ref());
                put_bytes(buf, id.as_ref());
            }
            InventoryCommand::ReserveMulti { ttl_ms, items } => {
                put_uvarint(buf, *ttl_ms);
                put_uvarint(buf, items.len() as u64);
                for (sku, qty) in items {
                    put_bytes(buf, sku.as_ref());
                    put_uvarint(buf, *qty);
                }
            }
        }
    }

    /// Reads the arguments of opcode `op`, validating every bound.
    pub(super) fn decode(op: u16, r: &mut Reader<P>) -> Result<Self, DecodeError> {
        Ok(match op {
            opcode::INV_SET => {
                let sku = read_key(r)?;
                let on_hand = r.ivarint()?;
                if on_hand < 0 {
                    return Err(DecodeError::Invalid("ON_HAND must not be negative"));
                }
                let low = match r.uvarint()? {
                    0 => None,
                    m => Some(m - 1),
                };
                InventoryCommand::Set { sku, on_hand, low }
            }
            opcode::INV_STORE => InventoryCommand::Store(read_key(r)?),
            opcode::INV_ADJUST => InventoryCommand::Adjust {
                sku: read_key(r)?,
                delta: r.ivarint()?,
            },
            opcode::INV_GET => InventoryCommand::Get(read_key(r)?),
            opcode::INV_RESERVE => {
                let sku = read_key(r)?;
                let qty = checked_quantity(r.uvarint()?)?;
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                let id = match r.u8()? {
                    0 => None,
                    1 => Some(read_reservation_id(r)?),
                    _ => return Err(DecodeError::Invalid("has_id must be 0 or 1")),
                };
                InventoryCommand::Reserve {
                    sku,
                    qty,
                    ttl_ms,
                    id,
                }
            }
            opcode::INV_CONFIRM => InventoryCommand::Confirm {
                sku: read_key(r)?,
                id: read_reservation_id(r)?,
            },
            opcode::INV_RELEASE => InventoryCommand::Release {
                sku: read_key(r)?,
                id: read_reservation_id(r)?,
            },
            opcode::INV_RESERVE_MULTI => {
                let ttl_ms = checked_ttl(r.uvarint()?)?;
                let count = r.count(2)?;
                if count == 0 {
                    return Err(DecodeError::Invalid("a cart needs at least one line"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    let sku = read_key(r)?;
                    items.push((sku, checked_quantity(r.uvarint()?)?));
                }
                InventoryCommand::ReserveMulti { ttl_ms, items }
            }
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// Copies every argument into its own `Bytes`, so the command outlives its buffer.
    pub fn to_owned_bytes(&self) -> InventoryCommand<Bytes> {
        let own = |p: &P| Bytes::copy_from_slice(p.as_ref());
        match self {
            InventoryCommand::Set { sku, on_hand, low } => InventoryCommand::Set {
                sku: own(sku),
                on_hand: *on_hand,
                low: *low,
            },
            InventoryCommand::Store(store) => InventoryCommand::Store(own(store)),
            InventoryCommand::Adjust { sku, delta } => InventoryCommand::Adjust {
                sku: own(sku),
                delta: *delta,
            },
            InventoryCommand::Get(sku) => InventoryCommand::Get(own(sku)),
            InventoryCommand::Reserve {
                sku,
                qty,
                ttl_ms,
                id,
            } => InventoryCommand::Reserve {
                sku: own(sku),
                qty: *qty,
                ttl_ms: *ttl_ms,
                id: id.as_ref().map(own),
            },
            InventoryCommand::Confirm { sku, id } => InventoryCommand::Confirm {
                sku: own(sku),
                id: own(id),
            },
            InventoryCommand::Release { sku, id } => InventoryCommand::Release {
                sku: own(sku),
                id: own(id),
            },
            InventoryCommand::ReserveMulti { ttl_ms, items } => InventoryCommand::ReserveMulti {
                ttl_ms: *ttl_ms,
                items: items.iter().map(|(sku, qty)| (own(sku), *qty)).collect(),
            },
        }
    }
}

impl<P: Payload> InventoryCommand<P> {
    /// Parses the words after the command's name.
    pub(super) fn parse(spec: &'static CommandSpec, args: &[P]) -> Result<Self, ErrorReply> {
        let arity = |ok: bool| arity(spec, ok);
        Ok(match spec.opcode {
            opcode::INV_SET => {
                let low = match args {
                    [_, word, _] if word.as_ref().eq_ignore_ascii_case(b"ON_HAND") => None,
                    [_, word, _, low, m]
                        if word.as_ref().eq_ignore_ascii_case(b"ON_HAND")
                            && low.as_ref().eq_ignore_ascii_case(b"LOW") =>
                    {
                        Some(parse_int::<u64>(m.as_ref())?)
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                let on_hand = parse_int::<i64>(args[2].as_ref())?;
                if on_hand < 0 {
                    return Err(ErrorReply::new(
                        ErrorCode::Syntax,
                        "ON_HAND must not be negative",
                    ));
                }
                InventoryCommand::Set {
                    sku: text_key(&args[0])?,
                    on_hand,
                    low,
                }
            }
            opcode::INV_STORE => {
                arity(args.len() == 1)?;
                InventoryCommand::Store(text_key(&args[0])?)
            }
            opcode::INV_ADJUST => {
                arity(args.len() == 2)?;
                InventoryCommand::Adjust {
                    sku: text_key(&args[0])?,
                    delta: parse_int::<i64>(args[1].as_ref())?,
                }
            }
            opcode::INV_GET => {
                arity(args.len() == 1)?;
                InventoryCommand::Get(text_key(&args[0])?)
            }
            opcode::INV_RESERVE => {
                let id = match args {
                    [_, _, ttl, _] if ttl.as_ref().eq_ignore_ascii_case(b"TTL") => None,
                    [_, _, ttl, _, word, id]
                        if ttl.as_ref().eq_ignore_ascii_case(b"TTL")
                            && word.as_ref().eq_ignore_ascii_case(b"ID") =>
                    {
                        Some(text_reservation_id(id)?)
                    }
                    _ => return arity(false).map(|_| unreachable!()),
                };
                InventoryCommand::Reserve {
                    sku: text_key(&args[0])?,
                    qty: text_quantity(args[1].as_ref())?,
                    ttl_ms: parse_seconds(args[3].as_ref())?,
                    id,
                }
            }
            opcode::INV_CONFIRM | opcode::INV_RELEASE => {
                arity(args.len() == 1)?;
                let (sku, id) = split_reservation(&args[0])?;
                if spec.opcode == opcode::INV_CONFIRM {
                    InventoryCommand::Confirm { sku, id }
                } else {
                    InventoryCommand::Release { sku, id }
                }
            }
            opcode::INV_RESERVE_MULTI => {
                arity(
                    args.len() >= 4
                        && args.len().is_multiple_of(2)
                        && args[0].as_ref().eq_ignore_ascii_case(b"TTL"),
                )?;
                let items = args[2..]
                    .chunks_exact(2)
                    .map(|line| Ok((text_key(&line[0])?, text_quantity(line[1].as_ref())?)))
                    .collect::<Result<Vec<_>, ErrorReply>>()?;
                InventoryCommand::ReserveMulti {
                    ttl_ms: parse_seconds(args[1].as_ref())?,
                    items,
                }
            }
            _ => return Err(not_in_family(spec)),
        })
    }
}

fn checked_quantity(qty: u64) -> Result<u64, DecodeError> {
    if !(1..=i64::MAX as u64).contains(&qty) {
        return Err(DecodeError::Invalid(
            "quantity must be between 1 and 2^63-1",
        ));
    }
    Ok(qty)
}

fn read_reservation_id<P: Payload>(r: &mut Reader<P>) -> Result<P, DecodeError> {
    let id = r.bytes()?;
    let bytes = id.as_ref();
    if bytes.is_empty() || bytes.len() > 256 || bytes.contains(&b'#') {
        return Err(DecodeError::Invalid(
            "a reservation id is 1 to 256 bytes without #",
        ));
    }
    Ok(id)
}

fn text_quantity(word: &[u8]) -> Result<u64, ErrorReply> {
    let qty = parse_int::<u64>(word)?;
    checked_quantity(qty).map_err(|e| ErrorReply::new(ErrorCode::Syntax, e.to_string()))
}

fn text_reservation_id<P: Payload>(word: &P) -> Result<P, ErrorReply> {
    if word.as_ref().is_empty() || word.as_ref().len() > 256 || word.as_ref().contains(&b'#') {
        return Err(ErrorReply::new(
            ErrorCode::Syntax,
            "a reservation id is 1 to 256 bytes without #",
        ));
    }
    Ok(word.clone())
}

fn split_reservation<P: Payload>(handle: &P) -> Result<(P, P), ErrorReply> {
    let (sku, _) = split_reservation_handle(handle.as_ref())
        .ok_or_else(|| ErrorReply::new(ErrorCode::Syntax, "a reservation looks like sku#id"))?;
    let mut id = handle.clone();
    let sku = id.take_front(sku.len());
    id.take_front(1);
    Ok((text_key(&sku)?, id))
}
