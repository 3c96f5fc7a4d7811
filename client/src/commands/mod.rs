//! Typed methods for each command family, one module per family, and the reply readers
//! they share.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;
use tessera_protocol::{
    AdminCommand, CounterCommand, DedupCommand, IdemCommand, InventoryCommand, KeyCommand,
    LimitCommand, PresenceCommand, TimelineCommand, VersionedCommand,
};

use bytes::Bytes;
use tessera_protocol::commands::{Algorithm, Cursor, RateLimit, Tier, Tiers};
use tessera_protocol::{Combine, Command, SetArgs, SetCondition, SetExpiry, Value};

use crate::{Client, Error, Result};

/// A key's remaining time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

fn bytes(value: impl Into<Bytes>) -> Bytes {
    value.into()
}

fn expect_int(value: Value) -> Result<i64> {
    value
        .as_int()
        .ok_or_else(|| Error::unexpected("an integer", &value))
}

fn expect_optional_bytes(value: Value) -> Result<Option<Bytes>> {
    match value {
        Value::Nil => Ok(None),
        Value::Bytes(b) => Ok(Some(b)),
        other => Err(Error::unexpected("bytes or nil", &other)),
    }
}

/// Each part's array answer put back at its keys' positions in the caller's order, as the
/// split's combine says.
fn reassemble<T: Default + Clone>(
    (combine, parts): (Combine, Vec<Value>),
    convert: fn(Value) -> Result<T>,
) -> Result<Vec<T>> {
    let Combine::Positions { positions, len } = combine else {
        return Err(Error::Protocol("a split that answers per key".into()));
    };
    let parts = parts
        .into_iter()
        .map(|part| match part {
            Value::Array(items) => items.into_iter().map(convert).collect(),
            other => Err(Error::unexpected("an array", &other)),
        })
        .collect::<Result<Vec<Vec<T>>>>()?;
    Ok(Combine::place(&positions, len, parts, T::default()))
}

fn expect_ok(value: Value) -> Result<()> {
    match value {
        Value::Ok => Ok(()),
        other => Err(Error::unexpected("OK", &other)),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn expect_bool(value: Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(Error::unexpected("a bool", &other)),
    }
}

mod counters;
mod idem;
mod inventory;
mod keys;
mod limits;
mod presence;
mod timelines;
mod versioned;

pub use counters::Take;
pub use idem::Idem;
pub use inventory::{Cart, Reservation, Stock, StoreFigures};
pub use keys::{SetBuilder, SetGetBuilder};
pub use limits::{RateDecision, RateLimitBuilder};
pub use presence::PresenceInfo;
pub use timelines::TimelinePage;
pub use versioned::Cas;
