//! Inventory: stock, reservations and carts.

use super::*;

/// A SKU's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// Units physically there.
    pub on_hand: i64,
    /// Units held by active reservations.
    pub reserved: i64,
    /// Units that can still be reserved.
    pub available: i64,
    /// Active reservations.
    pub reservations: i64,
}

impl Stock {
    fn from_reply(reply: &Value) -> Result<Stock> {
        let int = |name| reply.get(name).and_then(Value::as_int);
        match (
            int("on_hand"),
            int("reserved"),
            int("available"),
            int("reservations"),
        ) {
            (Some(on_hand), Some(reserved), Some(available), Some(reservations)) => Ok(Stock {
                on_hand,
                reserved,
                available,
                reservations,
            }),
            _ => Err(Error::unexpected("SKU figures", reply)),
        }
    }
}

/// A store's figures over its SKUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFigures {
    /// SKUs in the store.
    pub skus: i64,
    /// SKUs with nothing available.
    pub sold_out: i64,
    /// SKUs at or below their low-stock mark, not sold out.
    pub low_stock: i64,
}

/// How a reserve ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Units are held; confirm or release with `handle` (`sku#id`).
    Held {
        /// Handle to confirm or release with.
        handle: Bytes,
        /// Whether a retry found it already confirmed.
        confirmed: bool,
    },
    /// Not enough units: this many are available.
    Short {
        /// Units available.
        available: i64,
    },
}

/// How a cart reservation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cart {
    /// Every line is held; one handle per line, in order.
    Held(Vec<Bytes>),
    /// Nothing is held; these SKUs were short.
    Short(Vec<Bytes>),
}

fn split_handle(handle: &Bytes) -> Result<(Bytes, Bytes)> {
    let (sku, id) = tessera_protocol::commands::split_reservation_handle(handle)
        .ok_or_else(|| Error::InvalidArgument("a reservation handle looks like sku#id".into()))?;
    Ok((handle.slice_ref(sku), handle.slice_ref(id)))
}

impl Client {
    /// INV.STORE: how many of a store's SKUs are sold out or low; `store` is the hash tag
    /// its SKUs share (`{store}:...`).
    ///
    /// # Errors
    /// Link failures.
    pub async fn inv_store(&self, store: impl Into<Bytes>) -> Result<StoreFigures> {
        let reply = self
            .call(Command::Inventory(InventoryCommand::Store(bytes(store))))
            .await?;
        let int = |name| reply.get(name).and_then(Value::as_int);
        match (int("skus"), int("sold_out"), int("low_stock")) {
            (Some(skus), Some(sold_out), Some(low_stock)) => Ok(StoreFigures {
                skus,
                sold_out,
                low_stock,
            }),
            _ => Err(Error::unexpected("store figures", &reply)),
        }
    }

    /// INV.SET: sets a SKU's units on hand and, if given, its low-stock mark.
    ///
    /// # Errors
    /// `Server` with `Conflict` if that is below what is reserved.
    pub async fn inv_set(
        &self,
        sku: impl Into<Bytes>,
        on_hand: i64,
        low: Option<u64>,
    ) -> Result<Stock> {
        Stock::from_reply(
            &self
                .call(Command::Inventory(InventoryCommand::Set {
                    sku: bytes(sku),
                    on_hand,
                    low,
                }))
                .await?,
        )
    }

    /// INV.ADJUST: restock (positive) or shrinkage (negative).
    ///
    /// # Errors
    /// `Server` with `Conflict` if on hand would fall below what is reserved.
    pub async fn inv_adjust(&self, sku: impl Into<Bytes>, delta: i64) -> Result<Stock> {
        Stock::from_reply(
            &self
                .call(Command::Inventory(InventoryCommand::Adjust {
                    sku: bytes(sku),
                    delta,
                }))
                .await?,
        )
    }

    /// INV.GET: a SKU's figures, or `None` if it was never set.
    ///
    /// # Errors
    /// `Server` with `WrongType` if the key holds something else.
    pub async fn inv_get(&self, sku: impl Into<Bytes>) -> Result<Option<Stock>> {
        match self
            .call(Command::Inventory(InventoryCommand::Get(bytes(sku))))
            .await?
        {
            Value::Nil => Ok(None),
            reply => Stock::from_reply(&reply).map(Some),
        }
    }

    /// INV.RESERVE: holds `qty` units for `ttl`; with an `id`, retries get the same hold.
    ///
    /// # Errors
    /// `Server` with `Syntax` for bad arguments.
    pub async fn inv_reserve(
        &self,
        sku: impl Into<Bytes>,
        qty: u64,
        ttl: Duration,
        id: Option<&str>,
    ) -> Result<Reservation> {
        let command = Command::Inventory(InventoryCommand::Reserve {
            sku: bytes(sku),
            qty,
            ttl_ms: millis(ttl).max(1),
            id: id.map(|id| Bytes::copy_from_slice(id.as_bytes())),
        });
        let reply = self.call(command).await?;
        let available = reply.get("available").and_then(Value::as_int).unwrap_or(0);
        match (
            reply.get("ok"),
            reply.get("reservation"),
            reply.get("state"),
        ) {
            (Some(Value::Bool(true)), Some(Value::Bytes(handle)), Some(Value::Text(state))) => {
                Ok(Reservation::Held {
                    handle: handle.clone(),
                    confirmed: state == "confirmed",
                })
            }
            (Some(Value::Bool(false)), _, _) => Ok(Reservation::Short { available }),
            _ => Err(Error::unexpected("a reservation", &reply)),
        }
    }

    /// INV.CONFIRM: turns a held reservation into a sale.
    ///
    /// # Errors
    /// `Server` with `NotFound` if it expired or was released.
    pub async fn inv_confirm(&self, handle: &Bytes) -> Result<()> {
        let (sku, id) = split_handle(handle)?;
        expect_ok(
            self.call(Command::Inventory(InventoryCommand::Confirm { sku, id }))
                .await?,
        )
    }

    /// INV.RELEASE: gives a held reservation's units back.
    ///
    /// # Errors
    /// `Server` with `NotFound` as for `inv_confirm`, `Conflict` if it is a sale.
    pub async fn inv_release(&self, handle: &Bytes) -> Result<()> {
        let (sku, id) = split_handle(handle)?;
        expect_ok(
            self.call(Command::Inventory(InventoryCommand::Release { sku, id }))
                .await?,
        )
    }

    /// Reserves every line of a cart or none. Lines on one shard (one `{hash tag}`) go in
    /// one atomic INV.RESERVE.MULTI; a cart across shards reserves each shard's part and,
    /// if any part is short, releases the parts already held. If this process dies in
    /// between, the held parts lapse with their TTL.
    ///
    /// # Errors
    /// Link failures (held parts then lapse with `ttl`).
    pub async fn inv_reserve_cart<S: Into<Bytes>>(
        &self,
        ttl: Duration,
        lines: impl IntoIterator<Item = (S, u64)>,
    ) -> Result<Cart> {
        let lines: Vec<(Bytes, u64)> = lines
            .into_iter()
            .map(|(sku, qty)| (sku.into(), qty))
            .collect();
        let ttl_ms = millis(ttl).max(1);
        let count = lines.len();
        let cart = Command::Inventory(InventoryCommand::ReserveMulti {
            ttl_ms,
            items: lines,
        });
        let (combine, replies) = self.fan_out(cart).await?;
        let positions = match combine {
            Combine::Positions { positions, .. } => positions,
            _ => vec![(0..count).collect()],
        };
        let parts = positions.into_iter().zip(replies);
        let mut handles = vec![Bytes::new(); count];
        let mut short = Vec::new();
        let mut held = Vec::new();
        for (positions, reply) in parts {
            match (
                reply.get("ok"),
                reply.get("reservations"),
                reply.get("short"),
            ) {
                (Some(Value::Bool(true)), Some(Value::Array(got)), _) => {
                    for (position, handle) in positions.into_iter().zip(got) {
                        let Value::Bytes(handle) = handle else {
                            return Err(Error::unexpected("a reservation handle", handle));
                        };
                        held.push(handle.clone());
                        handles[position] = handle.clone();
                    }
                }
                (Some(Value::Bool(false)), _, Some(Value::Array(skus))) => {
                    short.extend(skus.iter().filter_map(|s| match s {
                        Value::Bytes(sku) => Some(sku.clone()),
                        _ => None,
                    }));
                }
                _ => return Err(Error::unexpected("a cart reply", &reply)),
            }
        }
        if short.is_empty() {
            return Ok(Cart::Held(handles));
        }
        for handle in &held {
            // Best effort: a release that fails leaves the hold to lapse with its TTL.
            let _ = self.inv_release(handle).await;
        }
        Ok(Cart::Short(short))
    }
}
