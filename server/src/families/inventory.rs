//! Inventory on one shard: stock, reservations that lapse, carts all-or-nothing.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(
    keyspace: &mut Keyspace,
    command: &InventoryCommand<P>,
    now: u64,
) -> Value {
    match command {
        InventoryCommand::Set { sku, on_hand, low } => {
            let (on_hand, low) = (*on_hand, *low);
            with_sku(keyspace, sku.as_ref(), now, true, |sku| {
                if low.is_some() {
                    sku.low_at = low;
                }
                sku.set_on_hand(on_hand)
            })
        }
        InventoryCommand::Store(store) => {
            let figures = keyspace.store(hash_tag(store.as_ref()));
            Value::Map(vec![
                (Value::text("skus"), Value::Int(figures.skus)),
                (Value::text("sold_out"), Value::Int(figures.sold_out)),
                (Value::text("low_stock"), Value::Int(figures.low_stock)),
            ])
        }
        InventoryCommand::Adjust { sku, delta } => {
            let delta = *delta;
            with_sku(keyspace, sku.as_ref(), now, true, |sku| sku.adjust(delta))
        }
        InventoryCommand::Get(sku) => with_sku(keyspace, sku.as_ref(), now, false, |_| Ok(())),
        InventoryCommand::Reserve {
            sku,
            qty,
            ttl_ms,
            id,
        } => inv_reserve(
            keyspace,
            sku.as_ref(),
            id.as_ref().map(AsRef::as_ref),
            *qty as i64,
            now + ttl_ms,
            now,
        ),
        InventoryCommand::Confirm { sku, id } => {
            inv_settle(keyspace, sku.as_ref(), id.as_ref(), now, Sku::confirm)
        }
        InventoryCommand::Release { sku, id } => {
            inv_settle(keyspace, sku.as_ref(), id.as_ref(), now, Sku::release)
        }
        InventoryCommand::ReserveMulti { ttl_ms, items } => {
            inv_reserve_cart(keyspace, items, now + ttl_ms, now)
        }
    }
}

/// Gives back the units of `key`'s lapsed reservations; run when a timer comes due.
pub fn expire_reservations(keyspace: &mut Keyspace, key: &[u8], now: u64) {
    let found = keyspace.find(key, now);
    let next = keyspace.update(&found, |stored| match stored {
        Stored::Sku(sku) => {
            sku.expire(now);
            sku.next_expiry()
        }
        _ => None,
    });
    if let Some(Some(at)) = next {
        keyspace.schedule(at, key);
    }
}

fn sku_figures(sku: &Sku) -> Value {
    Value::Map(vec![
        (Value::text("on_hand"), Value::Int(sku.on_hand)),
        (Value::text("reserved"), Value::Int(sku.reserved)),
        (Value::text("available"), Value::Int(sku.available())),
        (
            Value::text("reservations"),
            Value::Int(sku.active_reservations() as i64),
        ),
    ])
}

fn refused(refusal: Refusal) -> Value {
    match refusal {
        Refusal::NotFound => Value::error(
            ErrorCode::NotFound,
            "no such reservation: never made, released, or expired",
        ),
        Refusal::AlreadyConfirmed => {
            Value::error(ErrorCode::Conflict, "the reservation is already confirmed")
        }
        Refusal::BelowReserved => Value::error(
            ErrorCode::Conflict,
            "units on hand would fall below the units reserved (or below zero)",
        ),
    }
}

/// Runs `change` on a SKU (lapsed reservations released first) and replies with its
/// figures. With `create`, a missing SKU starts at zero; without, it answers NIL.
fn with_sku(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    create: bool,
    change: impl FnOnce(&mut Sku) -> Result<(), Refusal>,
) -> Value {
    let found = keyspace.find(key, now);
    if !found.exists() {
        if !create {
            return Value::Nil;
        }
        let mut sku = Sku::default();
        if let Err(refusal) = change(&mut sku) {
            return refused(refusal);
        }
        let reply = sku_figures(&sku);
        keyspace.write(found, key, Stored::Sku(Box::new(sku)), None);
        return reply;
    }
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Sku(sku) => {
            // Changes first release what has lapsed; a plain read shows the record as the
            // server's reservation timers (every 100 ms) have left it.
            if create {
                sku.expire(now);
            }
            change(sku)
                .map(|()| sku_figures(sku))
                .unwrap_or_else(refused)
        }
        _ => wrong_type(),
    });
    outcome.unwrap_or(Value::Nil)
}

fn inv_reserve(
    keyspace: &mut Keyspace,
    key: &[u8],
    id: Option<&[u8]>,
    qty: i64,
    expires_at: u64,
    now: u64,
) -> Value {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Sku(sku) => {
            sku.expire(now);
            Ok((sku.reserve(id, qty, expires_at), sku.available()))
        }
        _ => Err(wrong_type()),
    });
    let (reserved, available) = match outcome {
        Some(Ok(result)) => result,
        Some(Err(reply)) => return reply,
        None => (Reserved::Short, 0),
    };
    match reserved {
        Reserved::Held { id, confirmed } => {
            keyspace.schedule(expires_at, key);
            Value::Map(vec![
                (Value::text("ok"), Value::Bool(true)),
                (
                    Value::text("reservation"),
                    Value::Bytes(reservation_handle(key, &id)),
                ),
                (
                    Value::text("state"),
                    Value::text(if confirmed { "confirmed" } else { "active" }),
                ),
                (Value::text("available"), Value::Int(available)),
            ])
        }
        Reserved::Short => Value::Map(vec![
            (Value::text("ok"), Value::Bool(false)),
            (Value::text("available"), Value::Int(available)),
        ]),
    }
}

/// `sku#id`: the handle clients confirm or release a reservation with.
fn reservation_handle(sku: &[u8], id: &[u8]) -> Bytes {
    let mut handle = Vec::with_capacity(sku.len() + 1 + id.len());
    handle.extend_from_slice(sku);
    handle.push(b'#');
    handle.extend_from_slice(id);
    Bytes::from(handle)
}

fn inv_settle(
    keyspace: &mut Keyspace,
    key: &[u8],
    id: &[u8],
    now: u64,
    settle: fn(&mut Sku, &[u8]) -> Result<(), Refusal>,
) -> Value {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Sku(sku) => {
            sku.expire(now);
            settle(sku, id).map(|()| Value::Ok).unwrap_or_else(refused)
        }
        _ => wrong_type(),
    });
    outcome.unwrap_or_else(|| refused(Refusal::NotFound))
}

/// Reserves every line of a cart or none. All SKUs are on this shard (the coordinator
/// refuses carts that span shards), so checking first and then reserving is atomic.
fn inv_reserve_cart<P: Payload>(
    keyspace: &mut Keyspace,
    items: &[(P, u64)],
    expires_at: u64,
    now: u64,
) -> Value {
    let mut short = Vec::new();
    for (i, (sku, _)) in items.iter().enumerate() {
        let key = sku.as_ref();
        // A SKU named on several lines must cover their sum.
        let wanted: i64 = items
            .iter()
            .filter(|(s, _)| s.as_ref() == key)
            .map(|(_, q)| *q as i64)
            .sum();
        if items[..i].iter().any(|(s, _)| s.as_ref() == key) {
            continue;
        }
        let found = keyspace.find(key, now);
        let fits = keyspace.update(&found, |stored| match stored {
            Stored::Sku(sku) => {
                sku.expire(now);
                Ok(sku.can_reserve(wanted))
            }
            _ => Err(()),
        });
        match fits {
            Some(Ok(true)) => {}
            Some(Err(())) => return wrong_type(),
            Some(Ok(false)) | None => short.push(Value::Bytes(Bytes::copy_from_slice(key))),
        }
    }
    if !short.is_empty() {
        return Value::Map(vec![
            (Value::text("ok"), Value::Bool(false)),
            (Value::text("short"), Value::Array(short)),
        ]);
    }
    let mut handles = Vec::with_capacity(items.len());
    for (sku, qty) in items {
        let key = sku.as_ref();
        let found = keyspace.find(key, now);
        let reserved = keyspace.update(&found, |stored| match stored {
            Stored::Sku(sku) => sku.reserve(None, *qty as i64, expires_at),
            _ => Reserved::Short,
        });
        let Some(Reserved::Held { id, .. }) = reserved else {
            return Value::error(
                ErrorCode::Internal,
                "a checked cart line could not be reserved",
            );
        };
        keyspace.schedule(expires_at, key);
        handles.push(Value::Bytes(reservation_handle(key, &id)));
    }
    Value::Map(vec![
        (Value::text("ok"), Value::Bool(true)),
        (Value::text("reservations"), Value::Array(handles)),
    ])
}
