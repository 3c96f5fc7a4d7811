//! Inventory: a SKU's units on hand and its reservations, kept together in one record so
//! every change is atomic on the shard and `0 <= reserved <= on_hand` always holds.

use hashbrown::HashMap;

use crate::data::codec::{Damaged, In, Out};

/// One reservation of a SKU's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    /// Units held.
    qty: i64,
    /// When an unconfirmed reservation gives its units back, or a confirmed one is
    /// forgotten (it is kept until then so a retried reserve finds it).
    expires_at: u64,
    /// Whether it became a sale.
    confirmed: bool,
}

/// A SKU's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku {
    /// Units physically there (sold units have left).
    pub on_hand: i64,
    /// Units held by active reservations.
    pub reserved: i64,
    /// Low-stock mark: low when at most this many units are available.
    pub low_at: Option<u64>,
    /// Next server-made reservation id.
    next_id: u64,
    /// Active and recently confirmed reservations, by id.
    reservations: HashMap<Box<[u8]>, Held>,
    /// Unconfirmed reservations.
    active: usize,
    /// Earliest `expires_at` among the reservations: nothing to do before then.
    earliest: u64,
    /// Bytes of reservation ids, for memory accounting.
    id_bytes: usize,
}

impl Default for Sku {
    fn default() -> Self {
        Self {
            on_hand: 0,
            reserved: 0,
            low_at: None,
            next_id: 0,
            reservations: HashMap::new(),
            active: 0,
            earliest: u64::MAX,
            id_bytes: 0,
        }
    }
}

/// How a reserve ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Units are held under this id; `confirmed` if a retry found it already sold.
    Held {
        /// Reservation id.
        id: Box<[u8]>,
        /// Whether it was already confirmed.
        confirmed: bool,
    },
    /// Not enough units available.
    Short,
}

/// Why a confirm or release failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such active reservation: never made, released, or expired.
    NotFound,
    /// Releasing a reservation that is already a sale.
    AlreadyConfirmed,
    /// The change would leave fewer units on hand than are reserved, or fewer than none.
    BelowReserved,
}

/// Where a SKU stands for its store's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockLevel {
    /// More than the low-stock mark available.
    Normal,
    /// Some available, but at or below the low-stock mark.
    Low,
    /// Nothing available.
    SoldOut,
}

impl Sku {
    /// Where this SKU stands: sold out, low, or normal.
    pub fn level(&self) -> StockLevel {
        let available = self.available();
        if available <= 0 {
            StockLevel::SoldOut
        } else if self.low_at.is_some_and(|low| available as u64 <= low) {
            StockLevel::Low
        } else {
            StockLevel::Normal
        }
    }

    /// Units that can still be reserved.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// Active (unconfirmed) reservations.
    pub fn active_reservations(&self) -> usize {
        self.active
    }

    /// Heap bytes held by the reservations, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.reservations.allocation_size() + self.id_bytes
    }

    /// Saves the SKU: its figures and every reservation it remembers.
    pub fn save(&self, out: &mut Out<'_>) {
        out.int(self.on_hand);
        out.int(self.reserved);
        out.uint(self.low_at.map_or(0, |at| at + 1));
        out.uint(self.next_id);
        out.uint(self.reservations.len() as u64);
        for (id, held) in &self.reservations {
            out.bytes(id);
            out.int(held.qty);
            out.uint(held.expires_at);
            out.byte(u8::from(held.confirmed));
        }
    }

    /// Reads a SKU `save` wrote.
    ///
    /// # Errors
    /// The bytes are damaged, or its reservations do not add up to what it says is
    /// reserved (the invariant every change keeps).
    pub fn load(input: &mut In<'_>) -> Result<Sku, Damaged> {
        let mut sku = Sku {
            on_hand: input.int()?,
            reserved: input.int()?,
            low_at: input.uint()?.checked_sub(1),
            next_id: input.uint()?,
            ..Sku::default()
        };
        let mut held_units = 0i64;
        for _ in 0..input.count()? {
            let id: Box<[u8]> = input.bytes()?.into();
            let held = Held {
                qty: input.int()?,
                expires_at: input.uint()?,
                confirmed: input.byte()? == 1,
            };
            if !held.confirmed {
                sku.active += 1;
                held_units = held_units.saturating_add(held.qty);
            }
            sku.earliest = sku.earliest.min(held.expires_at);
            sku.id_bytes += id.len();
            sku.reservations.insert(id, held);
        }
        if held_units != sku.reserved || !(0..=sku.on_hand).contains(&sku.reserved) {
            return Err(Damaged("reservations do not match the units reserved"));
        }
        Ok(sku)
    }

    /// Gives back the units of reservations whose time is up and forgets old sales.
    /// Returns the units given back. Costs nothing until the earliest expiry comes.
    pub fn expire(&mut self, now: u64) -> i64 {
        if now < self.earliest {
            return 0;
        }
        let (mut released, mut lapsed, mut id_bytes) = (0, 0, 0);
        let mut earliest = u64::MAX;
        self.reservations.retain(|id, held| {
            if held.expires_at > now {
                earliest = earliest.min(held.expires_at);
                return true;
            }
            if !held.confirmed {
                released += held.qty;
                lapsed += 1;
            }
            id_bytes += id.len();
            false
        });
        self.reserved -= released;
        self.active -= lapsed;
        self.id_bytes -= id_bytes;
        self.earliest = earliest;
        released
    }

    /// Earliest time a reservation needs attention, if any.
    pub fn next_expiry(&self) -> Option<u64> {
        (self.earliest != u64::MAX).then_some(self.earliest)
    }

    /// Sets the units on hand.
    ///
    /// # Errors
    /// `BelowReserved` if `on_hand` is below what is reserved.
    pub fn set_on_hand(&mut self, on_hand: i64) -> Result<(), Refusal> {
        if on_hand < self.reserved {
            return Err(Refusal::BelowReserved);
        }
        self.on_hand = on_hand;
        Ok(())
    }

    /// Adds `delta` units on hand (negative for shrinkage).
    ///
    /// # Errors
    /// `BelowReserved` if on hand would fall below what is reserved.
    pub fn adjust(&mut self, delta: i64) -> Result<(), Refusal> {
        let on_hand = self
            .on_hand
            .checked_add(delta)
            .ok_or(Refusal::BelowReserved)?;
        self.set_on_hand(on_hand)
    }

    /// Whether `qty` units could be reserved now.
    pub fn can_reserve(&self, qty: i64) -> bool {
        self.available() >= qty
    }

    /// Reserves `qty` units until `expires_at`. With an `id` already known, returns that
    /// reservation instead of making a second one.
    pub fn reserve(&mut self, id: Option<&[u8]>, qty: i64, expires_at: u64) -> Reserved {
        if let Some(id) = id {
            if let Some(held) = self.reservations.get(id) {
                return Reserved::Held {
                    id: id.into(),
                    confirmed: held.confirmed,
                };
            }
        }
        if !self.can_reserve(qty) {
            return Reserved::Short;
        }
        let id: Box<[u8]> = match id {
            Some(id) => id.into(),
            None => {
                self.next_id += 1;
                format!("r{}", self.next_id).into_bytes().into_boxed_slice()
            }
        };
        self.reserved += qty;
        self.active += 1;
        self.id_bytes += id.len();
        self.earliest = self.earliest.min(expires_at);
        let held = Held {
            qty,
            expires_at,
            confirmed: false,
        };
        self.reservations.insert(id.clone(), held);
        Reserved::Held {
            id,
            confirmed: false,
        }
    }

    /// Turns an active reservation into a sale; confirming a sale again is accepted.
    ///
    /// # Errors
    /// `NotFound` if there is no such reservation (released, expired, or never made).
    pub fn confirm(&mut self, id: &[u8]) -> Result<(), Refusal> {
        let held = self.reservations.get_mut(id).ok_or(Refusal::NotFound)?;
        if !held.confirmed {
            held.confirmed = true;
            self.on_hand -= held.qty;
            self.reserved -= held.qty;
            self.active -= 1;
        }
        Ok(())
    }

    /// Gives an active reservation's units back.
    ///
    /// # Errors
    /// `NotFound` as for `confirm`; `AlreadyConfirmed` if it is a sale.
    pub fn release(&mut self, id: &[u8]) -> Result<(), Refusal> {
        match self.reservations.get(id) {
            None => Err(Refusal::NotFound),
            Some(held) if held.confirmed => Err(Refusal::AlreadyConfirmed),
            Some(held) => {
                let qty = held.qty;
                self.reservations.remove(id);
                self.reserved -= qty;
                self.active -= 1;
                self.id_bytes -= id.len();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held(reserved: Reserved) -> Box<[u8]> {
        match reserved {
            Reserved::Held { id, .. } => id,
            Reserved::Short => panic!("expected a reservation"),
        }
    }

    #[test]
    fn reserve_confirm_release_and_expire() {
        let mut sku = Sku::default();
        sku.set_on_hand(5).unwrap();
        let a = held(sku.reserve(None, 3, 100));
        assert_eq!(sku.reserve(None, 3, 100), Reserved::Short, "only 2 left");
        let b = held(sku.reserve(Some(b"order-1"), 2, 50));
        assert_eq!(sku.available(), 0);
        assert_eq!(
            held(sku.reserve(Some(b"order-1"), 2, 50)),
            b,
            "a retry gets the same reservation"
        );
        sku.confirm(&a).unwrap();
        assert_eq!((sku.on_hand, sku.reserved), (2, 2));
        assert_eq!(sku.release(&a), Err(Refusal::AlreadyConfirmed));
        assert_eq!(sku.expire(50), 2, "order-1 lapsed and gave its units back");
        assert_eq!(sku.confirm(b"order-1"), Err(Refusal::NotFound));
        assert_eq!((sku.on_hand, sku.reserved, sku.available()), (2, 0, 2));
        assert_eq!(sku.adjust(-3), Err(Refusal::BelowReserved));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(i64, u64),
        Confirm(usize),
        Release(usize),
        Adjust(i64),
        Advance(u64),
    }

    proptest! {
        /// Whatever happens, nothing is oversold: 0 <= reserved <= on_hand, and the units
        /// sold plus on hand always equal the stock put in.
        #[test]
        fn never_oversells(ops in proptest::collection::vec(prop_oneof![
            (1i64..4, 1u64..50).prop_map(|(q, t)| Op::Reserve(q, t)),
            (0usize..8).prop_map(Op::Confirm),
            (0usize..8).prop_map(Op::Release),
            (-3i64..5).prop_map(Op::Adjust),
            (1u64..30).prop_map(Op::Advance),
        ], 1..200)) {
            let mut sku = Sku::default();
            let mut stock = 0i64;
            let mut sold = 0i64;
            let mut ids: Vec<Box<[u8]>> = Vec::new();
            let mut now = 0;
            for op in ops {
                sku.expire(now);
                match op {
                    Op::Reserve(qty, ttl) => {
                        if let Reserved::Held { id, .. } = sku.reserve(None, qty, now + ttl) {
                            ids.push(id);
                        }
                    }
                    Op::Confirm(i) => if let Some(id) = ids.get(i) {
                        let before = sku.on_hand;
                        if sku.confirm(id).is_ok() {
                            sold += before - sku.on_hand;
                        }
                    },
                    Op::Release(i) => if let Some(id) = ids.get(i) {
                        let _ = sku.release(id);
                    },
                    Op::Adjust(delta) => if sku.adjust(delta).is_ok() {
                        stock += delta;
                    },
                    Op::Advance(ms) => now += ms,
                }
                prop_assert!(0 <= sku.reserved && sku.reserved <= sku.on_hand, "{sku:?}");
                prop_assert_eq!(sold + sku.on_hand, stock);
            }
        }
    }
}
