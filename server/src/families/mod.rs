//! Shard-side operations: synchronous functions on one shard's keyspace that return values.
//!
//! Nothing here knows about connections, replies or other shards; a coordinator hands in a
//! command whose keys this shard owns and gets a `Value` back.

use bytes::Bytes;
use tessera_protocol::commands::MAX_EXPIRE_MS;
use tessera_protocol::commands::{Algorithm, Cursor, RateLimit, Tier, MAX_TIERS};
use tessera_protocol::wire::Payload;
use tessera_protocol::{
    AdminCommand, CounterCommand, DedupCommand, IdemCommand, InventoryCommand, KeyCommand,
    LimitCommand, PresenceCommand, TimelineCommand, VersionedCommand,
};
use tessera_protocol::{Command, ErrorCode, ErrorReply, SetArgs, SetCondition, SetExpiry, Value};

use tessera_cluster::hash_tag;

use crate::data::inventory::{Refusal, Reserved, Sku};
use crate::data::keyspace::{Blob, Found, IdemRecord, Keyspace, Presence, Stored, Versioned};
use crate::data::timeline::{merge, Page, Timeline};
use tessera_limits::{Decision, Gcra, Window};
use tessera_protocol::geo::GeoCommand;

pub mod geo;
pub mod watch;

/// A shard operation's result: a value, or a stored value lent out until the reply is
/// written, so a local GET copies its bytes once, straight into the output buffer.
pub enum Reply<'a> {
    /// A value built for the reply.
    Value(Value),
    /// A stored value, read in place.
    Stored(&'a Blob),
}

impl Reply<'_> {
    /// The reply as an owned value, for sending to another shard.
    pub fn into_value(self) -> Value {
        match self {
            Reply::Value(value) => value,
            Reply::Stored(blob) => to_value(blob),
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Value(Value::Error(_)))
    }
}

/// Runs a key command (or the key-owning part of a multi-key one) on `keyspace`.
///
/// Commands without keys that every shard answers (DBSIZE, FLUSHALL) are included; INFO,
/// PING and HELLO are not shard operations and reply with an internal error here.
pub fn apply<'a, P: Payload>(
    keyspace: &'a mut Keyspace,
    command: &Command<P>,
    now: u64,
) -> Reply<'a> {
    if let Command::Keys(KeyCommand::Get(key)) = command {
        return match keyspace.get(key.as_ref(), now) {
            Some(Stored::Blob(blob)) => Reply::Stored(blob),
            Some(_) => Reply::Value(wrong_type()),
            None => Reply::Value(Value::Nil),
        };
    }
    Reply::Value(apply_owned(keyspace, command, now))
}

fn apply_owned<P: Payload>(keyspace: &mut Keyspace, command: &Command<P>, now: u64) -> Value {
    match command {
        Command::Keys(KeyCommand::Get(key)) => match keyspace.get(key.as_ref(), now) {
            Some(Stored::Blob(blob)) => to_value(blob),
            Some(_) => wrong_type(),
            None => Value::Nil,
        },
        Command::Keys(KeyCommand::Set(args)) => set(keyspace, args, now),
        Command::Keys(KeyCommand::Del(keys)) => count(keys, |k| keyspace.remove(k, now)),
        Command::Keys(KeyCommand::Exists(keys)) => count(keys, |k| keyspace.contains(k, now)),
        Command::Keys(KeyCommand::Expire { key, seconds }) => match seconds.checked_mul(1000) {
            Some(ms) => expire(keyspace, key.as_ref(), ms, now),
            None => invalid_expire(),
        },
        Command::Keys(KeyCommand::PExpire { key, millis }) => {
            expire(keyspace, key.as_ref(), *millis, now)
        }
        Command::Keys(KeyCommand::Ttl(key)) => {
            ttl(keyspace, key.as_ref(), now, |ms| (ms + 500) / 1000)
        }
        Command::Keys(KeyCommand::PTtl(key)) => ttl(keyspace, key.as_ref(), now, |ms| ms),
        Command::Keys(KeyCommand::Persist(key)) => {
            let had_deadline = matches!(keyspace.deadline(key.as_ref(), now), Some(Some(_)));
            if had_deadline {
                keyspace.set_deadline(key.as_ref(), None, now);
            }
            Value::Int(i64::from(had_deadline))
        }
        Command::Keys(KeyCommand::IncrBy { key, delta }) => {
            incr_by(keyspace, key.as_ref(), *delta, now)
        }
        Command::Keys(KeyCommand::DecrBy { key, delta }) => match delta.checked_neg() {
            Some(delta) => incr_by(keyspace, key.as_ref(), delta, now),
            None => overflow(),
        },
        Command::Keys(KeyCommand::MGet(keys)) => Value::Array(
            keys.iter()
                .map(|k| match keyspace.get(k.as_ref(), now) {
                    Some(Stored::Blob(blob)) => to_value(blob),
                    _ => Value::Nil,
                })
                .collect(),
        ),
        Command::Keys(KeyCommand::MSet(pairs)) => {
            for (key, value) in pairs {
                keyspace.insert(key.as_ref(), Blob::new(value.as_ref()).into(), None, now);
            }
            Value::Ok
        }
        Command::Dedup(DedupCommand::Check { key, ttl_ms }) => {
            Value::Bool(dedup(keyspace, key.as_ref(), *ttl_ms, now))
        }
        Command::Dedup(DedupCommand::CheckMany { ttl_ms, keys }) => Value::Array(
            keys.iter()
                .map(|key| Value::Bool(dedup(keyspace, key.as_ref(), *ttl_ms, now)))
                .collect(),
        ),
        Command::Counters(CounterCommand::Take { key, amount, floor }) => {
            counter_take(keyspace, key.as_ref(), *amount as i64, *floor, now)
        }
        Command::Counters(CounterCommand::Put { key, amount }) => {
            incr_by(keyspace, key.as_ref(), *amount as i64, now)
        }
        Command::Counters(CounterCommand::IdRange { key, size }) => {
            id_range(keyspace, key.as_ref(), *size as i64, now)
        }
        Command::Limits(LimitCommand::Check(limit)) => rate_limit(keyspace, limit, now, true),
        Command::Limits(LimitCommand::Peek(limit)) => rate_limit(keyspace, limit, now, false),
        Command::Limits(LimitCommand::Reset(key)) => {
            let found = keyspace.find(key.as_ref(), now);
            match keyspace.value(&found) {
                Some(state) if state.is_rate_limit() => {
                    Value::Int(i64::from(keyspace.remove(key.as_ref(), now)))
                }
                Some(_) => wrong_type(),
                None => Value::Int(0),
            }
        }
        Command::Idem(IdemCommand::Begin {
            key,
            ttl_ms,
            lease_ms,
        }) => idem_begin(keyspace, key.as_ref(), *ttl_ms, *lease_ms, now),
        Command::Idem(IdemCommand::Complete { key, token, result }) => {
            idem_complete(keyspace, key.as_ref(), *token, result.as_ref(), now)
        }
        Command::Idem(IdemCommand::Get(key)) => {
            let found = keyspace.find(key.as_ref(), now);
            match keyspace.value(&found) {
                Some(Stored::Idem(record)) => idem_reply(record, now),
                Some(_) => wrong_type(),
                None => Value::Nil,
            }
        }
        Command::Versioned(VersionedCommand::Get(key)) => match keyspace.get(key.as_ref(), now) {
            Some(Stored::Versioned(versioned)) => Value::Map(vec![
                (Value::text("value"), to_value(&versioned.value)),
                (Value::text("version"), Value::Int(versioned.version as i64)),
            ]),
            Some(_) => wrong_type(),
            None => Value::Nil,
        },
        Command::Versioned(VersionedCommand::Set {
            key,
            value,
            if_version,
            ttl_ms,
        }) => versioned_set(
            keyspace,
            key.as_ref(),
            value.as_ref(),
            *if_version,
            *ttl_ms,
            now,
        ),
        Command::Inventory(InventoryCommand::Set { sku, on_hand, low }) => {
            let (on_hand, low) = (*on_hand, *low);
            with_sku(keyspace, sku.as_ref(), now, true, |sku| {
                if low.is_some() {
                    sku.low_at = low;
                }
                sku.set_on_hand(on_hand)
            })
        }
        Command::Inventory(InventoryCommand::Store(store)) => {
            let figures = keyspace.store(hash_tag(store.as_ref()));
            Value::Map(vec![
                (Value::text("skus"), Value::Int(figures.skus)),
                (Value::text("sold_out"), Value::Int(figures.sold_out)),
                (Value::text("low_stock"), Value::Int(figures.low_stock)),
            ])
        }
        Command::Inventory(InventoryCommand::Adjust { sku, delta }) => {
            let delta = *delta;
            with_sku(keyspace, sku.as_ref(), now, true, |sku| sku.adjust(delta))
        }
        Command::Inventory(InventoryCommand::Get(sku)) => {
            with_sku(keyspace, sku.as_ref(), now, false, |_| Ok(()))
        }
        Command::Inventory(InventoryCommand::Reserve {
            sku,
            qty,
            ttl_ms,
            id,
        }) => inv_reserve(
            keyspace,
            sku.as_ref(),
            id.as_ref().map(AsRef::as_ref),
            *qty as i64,
            now + ttl_ms,
            now,
        ),
        Command::Inventory(InventoryCommand::Confirm { sku, id }) => {
            inv_settle(keyspace, sku.as_ref(), id.as_ref(), now, Sku::confirm)
        }
        Command::Inventory(InventoryCommand::Release { sku, id }) => {
            inv_settle(keyspace, sku.as_ref(), id.as_ref(), now, Sku::release)
        }
        Command::Inventory(InventoryCommand::ReserveMulti { ttl_ms, items }) => {
            inv_reserve_cart(keyspace, items, now + ttl_ms, now)
        }
        Command::Timelines(TimelineCommand::Push { key, item, cap }) => {
            match tl_push(keyspace, key.as_ref(), *item, *cap, now) {
                Some(added) => Value::Int(i64::from(added)),
                None => wrong_type(),
            }
        }
        // A key of another kind among the followers is skipped, not the whole fan-out.
        Command::Timelines(TimelineCommand::Fanout { item, cap, keys }) => Value::Int(
            keys.iter()
                .filter(|key| tl_push(keyspace, key.as_ref(), *item, *cap, now) == Some(true))
                .count() as i64,
        ),
        Command::Timelines(TimelineCommand::Range {
            key,
            before,
            after,
            limit,
        }) => match keyspace.get(key.as_ref(), now) {
            Some(Stored::Timeline(timeline)) => {
                page_value(&timeline.range(*before, *after, *limit))
            }
            Some(_) => wrong_type(),
            None => page_value(&Page {
                items: Vec::new(),
                next: None,
            }),
        },
        Command::Timelines(TimelineCommand::Merge {
            limit,
            before,
            keys,
        }) => match merge_pages(keyspace, keys, *before, *limit, now) {
            Ok(page) => page_value(&page),
            Err(error) => Value::Error(error),
        },
        Command::Timelines(TimelineCommand::Remove { key, id }) => {
            change_timeline(keyspace, key.as_ref(), now, |t| i64::from(t.remove(*id)))
        }
        Command::Timelines(TimelineCommand::Len(key)) => {
            change_timeline(keyspace, key.as_ref(), now, |t| t.len() as i64)
        }
        Command::Timelines(TimelineCommand::Trim { key, keep }) => {
            change_timeline(keyspace, key.as_ref(), now, |t| t.trim(*keep) as i64)
        }
        Command::Presence(PresenceCommand::Beat {
            user,
            ttl_ms,
            grace_ms,
            meta,
        }) => watched_change(keyspace, user.as_ref(), now, |keyspace| {
            presence_beat(
                keyspace,
                user.as_ref(),
                now + ttl_ms + grace_ms,
                meta.as_ref().map(AsRef::as_ref),
                now,
            )
        }),
        Command::Presence(PresenceCommand::Get(users)) => Value::Array(
            users
                .iter()
                .map(|user| match keyspace.get(user.as_ref(), now) {
                    // A flat triple rather than a map: a batch of 100 users is 100 small
                    // arrays, not 400 allocations of field names.
                    Some(Stored::Presence(presence)) => Value::Array(vec![
                        Value::Bool(presence.online_until > now),
                        Value::Int(now.saturating_sub(presence.last_seen) as i64),
                        presence
                            .meta
                            .as_ref()
                            .map_or(Value::Nil, |m| Value::Bytes(Bytes::copy_from_slice(m))),
                    ]),
                    _ => Value::Nil,
                })
                .collect(),
        ),
        Command::Presence(PresenceCommand::Leave(user)) => {
            watched_change(keyspace, user.as_ref(), now, |keyspace| {
                let found = keyspace.find(user.as_ref(), now);
                let left = keyspace.update(&found, |stored| match stored {
                    Stored::Presence(presence) => {
                        let was_online = presence.online_until > now;
                        presence.online_until = presence.online_until.min(now);
                        Some(was_online)
                    }
                    _ => None,
                });
                match left {
                    Some(Some(was_online)) => Value::Int(i64::from(was_online)),
                    Some(None) => wrong_type(),
                    None => Value::Int(0),
                }
            })
        }
        Command::Admin(AdminCommand::DbSize) => Value::Int(keyspace.len() as i64),
        Command::Admin(AdminCommand::FlushAll) => {
            keyspace.clear();
            for user in keyspace.watches.users() {
                watch::look(keyspace, &user, now);
            }
            Value::Ok
        }
        Command::Geo(geo) => geo_here(keyspace, geo, now),
        Command::Admin(AdminCommand::Ping(_))
        | Command::Admin(AdminCommand::Hello { .. })
        | Command::Admin(AdminCommand::Info)
        | Command::Presence(PresenceCommand::Watch(_))
        | Command::Presence(PresenceCommand::Unwatch(_)) => {
            Value::error(ErrorCode::Internal, "not a shard operation")
        }
    }
}

/// Renders a stored value as the bytes a client reads.
pub fn to_value(stored: &Blob) -> Value {
    match stored.as_bytes() {
        Some(bytes) => Value::Bytes(Bytes::copy_from_slice(bytes)),
        None => match stored {
            Blob::Int(n) => Value::Bytes(Bytes::from(n.to_string())),
            _ => Value::Nil,
        },
    }
}

fn count<P: Payload>(keys: &[P], mut hit: impl FnMut(&[u8]) -> bool) -> Value {
    Value::Int(keys.iter().filter(|k| hit(k.as_ref())).count() as i64)
}

fn set<P: Payload>(keyspace: &mut Keyspace, args: &SetArgs<P>, now: u64) -> Value {
    let key = args.key.as_ref();
    let found = keyspace.find(key, now);
    let current_deadline = keyspace.deadline_of(&found);
    let proceed = match args.condition {
        SetCondition::Always => true,
        SetCondition::IfAbsent => !found.exists(),
        SetCondition::IfPresent => found.exists(),
    };
    let old = match (args.get, keyspace.value(&found)) {
        (true, Some(Stored::Blob(blob))) => to_value(blob),
        (true, Some(_)) => return wrong_type(),
        _ => Value::Nil,
    };
    if !proceed {
        return old;
    }
    let deadline = match args.expiry {
        SetExpiry::Clear => None,
        SetExpiry::Keep => current_deadline.flatten(),
        SetExpiry::In(ms) => Some(now + ms),
    };
    keyspace.write(found, key, Blob::new(args.value.as_ref()).into(), deadline);
    if args.get {
        old
    } else {
        Value::Ok
    }
}

fn expire(keyspace: &mut Keyspace, key: &[u8], ms: i64, now: u64) -> Value {
    if ms > MAX_EXPIRE_MS {
        return invalid_expire();
    }
    let applied = if ms <= 0 {
        keyspace.remove(key, now)
    } else {
        keyspace.set_deadline(key, Some(now + ms as u64), now)
    };
    Value::Int(i64::from(applied))
}

fn ttl(keyspace: &mut Keyspace, key: &[u8], now: u64, scale: impl Fn(i64) -> i64) -> Value {
    match keyspace.deadline(key, now) {
        None => Value::Int(-2),
        Some(None) => Value::Int(-1),
        Some(Some(deadline)) => Value::Int(scale(deadline.saturating_sub(now) as i64)),
    }
}

/// Records `key` for `ttl_ms` unless it is already there; `true` for the first sighting.
fn dedup(keyspace: &mut Keyspace, key: &[u8], ttl_ms: u64, now: u64) -> bool {
    let found = keyspace.find(key, now);
    if found.exists() {
        return false;
    }
    keyspace.write(found, key, Blob::new(b"").into(), Some(now + ttl_ms));
    true
}

/// The integer a counter holds: `Ok(None)` if the key is missing, `Err` with the reply to
/// send if it holds something that is not an integer.
fn read_counter(keyspace: &Keyspace, found: &Found) -> Result<Option<i64>, Value> {
    match keyspace.value(found) {
        None => Ok(None),
        Some(Stored::Blob(Blob::Int(n))) => Ok(Some(*n)),
        Some(Stored::Blob(text)) => text
            .as_bytes()
            .and_then(parse_canonical_int)
            .map(Some)
            .ok_or_else(|| {
                Value::error(
                    ErrorCode::NotInteger,
                    "value is not an integer or out of range",
                )
            }),
        Some(_) => Err(wrong_type()),
    }
}

/// Stores `value` in a counter, keeping an existing key's expiry.
fn write_counter(keyspace: &mut Keyspace, found: Found, key: &[u8], value: i64) {
    if found.exists() {
        keyspace.replace_value(&found, Blob::Int(value).into());
    } else {
        keyspace.write(found, key, Blob::Int(value).into(), None);
    }
}

/// Adds `delta` to a counter (a missing key is 0); returns the values before and after.
fn add_to_counter(
    keyspace: &mut Keyspace,
    key: &[u8],
    delta: i64,
    now: u64,
) -> Result<(i64, i64), Value> {
    let found = keyspace.find(key, now);
    let before = read_counter(keyspace, &found)?.unwrap_or(0);
    let after = before.checked_add(delta).ok_or_else(overflow)?;
    write_counter(keyspace, found, key, after);
    Ok((before, after))
}

fn incr_by(keyspace: &mut Keyspace, key: &[u8], delta: i64, now: u64) -> Value {
    match add_to_counter(keyspace, key, delta, now) {
        Ok((_, after)) => Value::Int(after),
        Err(reply) => reply,
    }
}

fn counter_take(keyspace: &mut Keyspace, key: &[u8], amount: i64, floor: i64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let current = match read_counter(keyspace, &found) {
        Ok(current) => current.unwrap_or(0),
        Err(reply) => return reply,
    };
    let next = current.checked_sub(amount).filter(|next| *next >= floor);
    if let Some(next) = next {
        write_counter(keyspace, found, key, next);
    }
    Value::Map(vec![
        (Value::text("taken"), Value::Bool(next.is_some())),
        (
            Value::text("remaining"),
            Value::Int(next.unwrap_or(current)),
        ),
    ])
}

fn id_range(keyspace: &mut Keyspace, key: &[u8], size: i64, now: u64) -> Value {
    match add_to_counter(keyspace, key, size, now) {
        Ok((last_issued, last)) => {
            Value::Array(vec![Value::Int(last_issued + 1), Value::Int(last)])
        }
        Err(reply) => reply,
    }
}

/// Parses an integer written the way `to_value` would write it back (no `+`, no spaces,
/// no leading zeros), so INCRBY never silently rewrites a value's text.
fn parse_canonical_int(raw: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(raw).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

/// Checks (and with `consume`, counts) a request against a rate limit. State whose shape
/// does not match the request's tiers or algorithm (the limit was reconfigured) starts over.
fn rate_limit<P: Payload>(
    keyspace: &mut Keyspace,
    limit: &RateLimit<P>,
    now: u64,
    consume: bool,
) -> Value {
    let key = limit.key.as_ref();
    let found = keyspace.find(key, now);
    let fits = match keyspace.value(&found) {
        Some(state) if state.is_rate_limit() => same_shape(state, limit),
        Some(_) => return wrong_type(),
        None => false,
    };
    let decision = if fits {
        let Some((decision, idle)) =
            keyspace.update(&found, |state| decide(state, limit, now, consume))
        else {
            return Value::error(ErrorCode::Internal, "rate-limit state vanished");
        };
        if consume {
            keyspace.set_deadline_of(&found, Some(idle));
        }
        decision
    } else {
        let mut state = fresh_state(limit);
        let (decision, idle) = decide(&mut state, limit, now, consume);
        if consume && decision.allowed {
            keyspace.write(found, key, state, Some(idle));
        }
        decision
    };
    Value::Map(vec![
        (Value::text("allowed"), Value::Bool(decision.allowed)),
        (
            Value::text("remaining"),
            Value::Int(decision.remaining.min(i64::MAX as u64) as i64),
        ),
        (
            Value::text("reset_after_ms"),
            Value::Int(decision.reset_after_ms as i64),
        ),
        (
            Value::text("retry_after_ms"),
            Value::Int(decision.retry_after_ms),
        ),
    ])
}

fn same_shape<P>(state: &Stored, limit: &RateLimit<P>) -> bool {
    let tiers = limit.tiers.as_slice().len();
    match (state, limit.algorithm) {
        (Stored::Window(_), Algorithm::Sliding) => tiers == 1,
        (Stored::Tiers(windows), Algorithm::Sliding) => windows.len() == tiers,
        (Stored::Gcra(_), Algorithm::Gcra) => true,
        _ => false,
    }
}

fn fresh_state<P>(limit: &RateLimit<P>) -> Stored {
    match (limit.algorithm, limit.tiers.as_slice().len()) {
        (Algorithm::Gcra, _) => Stored::Gcra(Gcra::default()),
        (Algorithm::Sliding, 1) => Stored::Window(Window::default()),
        (Algorithm::Sliding, n) => Stored::Tiers(vec![Window::default(); n].into_boxed_slice()),
    }
}

/// Decides on `state` (already of the right shape) and returns the decision and the time
/// after which the state no longer matters, used as the key's expiry.
fn decide<P>(state: &mut Stored, limit: &RateLimit<P>, now: u64, consume: bool) -> (Decision, u64) {
    let tiers = limit.tiers.as_slice();
    match state {
        Stored::Gcra(gcra) => {
            let decision = gcra.check(as_limit(&tiers[0]), limit.burst, now, limit.cost, consume);
            (decision, gcra.idle_deadline())
        }
        Stored::Window(window) => decide_windows(
            std::slice::from_mut(window),
            tiers,
            limit.cost,
            now,
            consume,
        ),
        Stored::Tiers(windows) => decide_windows(windows, tiers, limit.cost, now, consume),
        Stored::Blob(_)
        | Stored::Idem(_)
        | Stored::Versioned(_)
        | Stored::Sku(_)
        | Stored::Timeline(_)
        | Stored::Presence(_) => {
            unreachable!("other kinds were refused with WRONGTYPE before deciding")
        }
    }
}

/// The wire tier as the algorithms' own type.
fn as_limit(tier: &Tier) -> tessera_limits::Tier {
    tessera_limits::Tier {
        limit: tier.limit,
        window_ms: tier.window_ms,
    }
}

/// All tiers decide first; the cost is then counted in every tier or in none.
fn decide_windows(
    windows: &mut [Window],
    tiers: &[Tier],
    cost: u64,
    now: u64,
    consume: bool,
) -> (Decision, u64) {
    let mut decisions = [None; MAX_TIERS];
    for (slot, (window, tier)) in decisions.iter_mut().zip(windows.iter_mut().zip(tiers)) {
        window.roll(now, tier.window_ms);
        *slot = Some(window.decide(as_limit(tier), now, cost));
    }
    let decision = Decision::all(decisions.into_iter().flatten());
    if consume && decision.allowed {
        windows.iter_mut().for_each(|w| w.consume(cost));
    }
    let idle = windows
        .iter()
        .zip(tiers)
        .map(|(w, t)| w.idle_deadline(t.window_ms))
        .max()
        .unwrap_or(now);
    (decision, idle)
}

/// Starts (or reports) an idempotent operation. A missing record, or one whose holder's
/// lease has lapsed without a result, is handed to this caller with a new token.
fn idem_begin(keyspace: &mut Keyspace, key: &[u8], ttl_ms: u64, lease_ms: u64, now: u64) -> Value {
    let found = keyspace.find(key, now);
    let taken_over = keyspace.update(&found, |state| match state {
        Stored::Idem(record) if record.result.is_none() && record.lease_until <= now => {
            // The last holder's lease lapsed without a result: this caller takes over.
            record.token += 1;
            record.lease_until = now + lease_ms;
            Ok(record.token)
        }
        Stored::Idem(record) => Err(idem_reply(record, now)),
        _ => Err(wrong_type()),
    });
    let token = match taken_over {
        Some(Ok(token)) => token,
        Some(Err(reply)) => return reply,
        None => {
            let record = IdemRecord {
                token: 1,
                lease_until: now + lease_ms,
                result: None,
            };
            keyspace.write(
                found,
                key,
                Stored::Idem(Box::new(record)),
                Some(now + ttl_ms),
            );
            1
        }
    };
    Value::Map(vec![
        (Value::text("state"), Value::text("new")),
        (Value::text("token"), Value::Int(token as i64)),
    ])
}

fn idem_complete(
    keyspace: &mut Keyspace,
    key: &[u8],
    token: u64,
    result: &[u8],
    now: u64,
) -> Value {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |state| match state {
        Stored::Idem(record) if record.result.is_some() => {
            Value::error(ErrorCode::Conflict, "the operation is already complete")
        }
        Stored::Idem(record) if record.token != token => Value::error(
            ErrorCode::Conflict,
            "the lease for this token lapsed and another caller took the operation over",
        ),
        Stored::Idem(record) => {
            record.result = Some(result.into());
            Value::Ok
        }
        _ => wrong_type(),
    });
    outcome.unwrap_or_else(|| {
        Value::error(
            ErrorCode::NotFound,
            "no idempotency record (it may have expired)",
        )
    })
}

fn idem_reply(record: &IdemRecord, now: u64) -> Value {
    match &record.result {
        Some(result) => Value::Map(vec![
            (Value::text("state"), Value::text("done")),
            (
                Value::text("result"),
                Value::Bytes(Bytes::copy_from_slice(result)),
            ),
        ]),
        None => Value::Map(vec![
            (Value::text("state"), Value::text("in_progress")),
            (Value::text("token"), Value::Int(record.token as i64)),
            (
                Value::text("retry_after_ms"),
                Value::Int(record.lease_until.saturating_sub(now) as i64),
            ),
        ]),
    }
}

/// Writes a versioned value if `if_version` (when given) is still the current version;
/// a missing key is version 0.
fn versioned_set(
    keyspace: &mut Keyspace,
    key: &[u8],
    value: &[u8],
    if_version: Option<u64>,
    ttl_ms: Option<u64>,
    now: u64,
) -> Value {
    let found = keyspace.find(key, now);
    let current = match keyspace.value(&found) {
        None => 0,
        Some(Stored::Versioned(versioned)) => versioned.version,
        Some(_) => return wrong_type(),
    };
    let outcome = |ok, version: u64| {
        Value::Map(vec![
            (Value::text("ok"), Value::Bool(ok)),
            (Value::text("version"), Value::Int(version as i64)),
        ])
    };
    if if_version.is_some_and(|expected| expected != current) {
        return outcome(false, current);
    }
    let version = current + 1;
    let stored = Stored::Versioned(Box::new(Versioned {
        version,
        value: Blob::new(value),
    }));
    keyspace.write(found, key, stored, ttl_ms.map(|ms| now + ms));
    outcome(true, version)
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

/// Runs a presence change, looking at a watched user's state before (to catch a lapse
/// not yet seen) and after, so watchers hear every change in order.
fn watched_change(
    keyspace: &mut Keyspace,
    user: &[u8],
    now: u64,
    change: impl FnOnce(&mut Keyspace) -> Value,
) -> Value {
    let watched = keyspace.watches.is_watched(user);
    if watched {
        watch::look(keyspace, user, now);
    }
    let reply = change(keyspace);
    if watched {
        watch::look(keyspace, user, now);
    }
    reply
}

/// A key's timer has come: lapse its reservations, or look at a watched user again.
pub fn timer_due(keyspace: &mut Keyspace, key: &[u8], now: u64) {
    expire_reservations(keyspace, key, now);
    watch::timer_fired(keyspace, key, now);
}

/// GEO.CREATE, GEO.COUNT and GEO.CELLS on one shard, for the partitions it holds. The
/// other geo commands run through `route::geo`.
fn geo_here<P: Payload>(keyspace: &mut Keyspace, command: &GeoCommand<P>, now: u64) -> Value {
    let rendered = match command {
        GeoCommand::Create { index, resolution } => {
            geo::create(keyspace, index.as_ref(), *resolution).map(|()| Value::Ok)
        }
        GeoCommand::Count { .. } => geo::count(keyspace, command, now).map(Value::Int),
        GeoCommand::Cells { .. } => geo::cells(keyspace, command, now).map(geo::render_cells),
        _ => Err(tessera_protocol::ErrorReply::new(
            ErrorCode::Internal,
            "runs on the member's home shard",
        )),
    };
    rendered.unwrap_or_else(Value::Error)
}

/// How long a user's last-seen time stays queryable after they go offline.
const PRESENCE_RETENTION_MS: u64 = 24 * 3600 * 1000;

/// Records a heartbeat; `true` if it brought the user online.
fn presence_beat(
    keyspace: &mut Keyspace,
    user: &[u8],
    online_until: u64,
    meta: Option<&[u8]>,
    now: u64,
) -> Value {
    let found = keyspace.find(user, now);
    let came_online = match keyspace.update(&found, |stored| match stored {
        Stored::Presence(presence) => {
            let came_online = presence.online_until <= now;
            presence.last_seen = now;
            presence.online_until = online_until;
            if let Some(meta) = meta {
                presence.meta = Some(meta.into());
            }
            Some(came_online)
        }
        _ => None,
    }) {
        Some(Some(came_online)) => came_online,
        Some(None) => return wrong_type(),
        None => {
            let presence = Presence {
                last_seen: now,
                online_until,
                meta: meta.map(Into::into),
            };
            keyspace.write(
                found,
                user,
                Stored::Presence(Box::new(presence)),
                Some(online_until + PRESENCE_RETENTION_MS),
            );
            return Value::Bool(true);
        }
    };
    let found = keyspace.find(user, now);
    keyspace.set_deadline_of(&found, Some(online_until + PRESENCE_RETENTION_MS));
    Value::Bool(came_online)
}

/// Pushes onto a timeline, creating it if missing; `None` (and no change) if the key
/// holds another kind of value.
fn tl_push(
    keyspace: &mut Keyspace,
    key: &[u8],
    item: Cursor,
    cap: Option<u32>,
    now: u64,
) -> Option<bool> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        let mut timeline = Timeline::default();
        let added = timeline.push(item, cap);
        keyspace.write(found, key, Stored::Timeline(Box::new(timeline)), None);
        return Some(added);
    }
    keyspace
        .update(&found, |stored| match stored {
            Stored::Timeline(timeline) => Some(timeline.push(item, cap)),
            _ => None,
        })
        .flatten()
}

/// Runs `change` on an existing timeline and replies with its count; a missing key counts
/// 0, a key of another kind is WRONGTYPE.
fn change_timeline(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    change: impl FnOnce(&mut Timeline) -> i64,
) -> Value {
    let found = keyspace.find(key, now);
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::Timeline(timeline) => Some(change(timeline)),
        _ => None,
    });
    match outcome {
        Some(Some(n)) => Value::Int(n),
        Some(None) => wrong_type(),
        None => Value::Int(0),
    }
}

/// A page as the reply value: items as `[id, score]`, `next` as `[score, id]` or NIL.
pub fn page_value(page: &Page) -> Value {
    let items = page
        .items
        .iter()
        .map(|c| Value::Array(vec![Value::Int(c.id as i64), Value::Int(c.score)]))
        .collect();
    let next = page.next.map_or(Value::Nil, |c| {
        Value::Array(vec![Value::Int(c.score), Value::Int(c.id as i64)])
    });
    Value::Map(vec![
        (Value::text("items"), Value::Array(items)),
        (Value::text("next"), next),
    ])
}

/// TL.MERGE over the timelines this shard owns: their newest items, merged.
///
/// # Errors
/// `WrongType` if a key holds another kind of value.
pub fn merge_pages<P: Payload>(
    keyspace: &mut Keyspace,
    keys: &[P],
    before: Option<Cursor>,
    limit: u32,
    now: u64,
) -> Result<Page, ErrorReply> {
    let mut pages = Vec::with_capacity(keys.len());
    for key in keys {
        match keyspace.get(key.as_ref(), now) {
            Some(Stored::Timeline(timeline)) => pages.push(timeline.range(before, None, limit)),
            Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
            None => {}
        }
    }
    Ok(merge(pages, limit))
}

/// What one shard answers for its part of a split request.
pub enum Part {
    /// One reply element per key of the part, in the part's order.
    Items(Vec<Value>),
    /// A count to add up.
    Count(i64),
    /// Done, nothing to report.
    Done,
    /// A timeline page to merge.
    Page(Page),
    /// The part failed; the whole request answers this error.
    Failed(ErrorReply),
}

/// Runs one part of a split request on the shard owning its keys.
pub fn run_part(keyspace: &mut Keyspace, part: &Command, now: u64) -> Part {
    if let Command::Timelines(TimelineCommand::Merge {
        limit,
        before,
        keys,
    }) = part
    {
        return match merge_pages(keyspace, keys, *before, *limit, now) {
            Ok(page) => Part::Page(page),
            Err(error) => Part::Failed(error),
        };
    }
    match apply(keyspace, part, now).into_value() {
        Value::Array(items) => Part::Items(items),
        Value::Int(count) => Part::Count(count),
        Value::Error(error) => Part::Failed(error),
        _ => Part::Done,
    }
}

/// What a WRONGTYPE error says.
const WRONG_TYPE: &str = "the key holds a value of another kind";

fn wrong_type() -> Value {
    Value::error(ErrorCode::WrongType, WRONG_TYPE)
}

fn overflow() -> Value {
    Value::error(
        ErrorCode::NotInteger,
        "increment or decrement would overflow",
    )
}

fn invalid_expire() -> Value {
    Value::error(ErrorCode::InvalidExpire, "invalid expire time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(keyspace: &mut Keyspace, command: &Command, now: u64) -> Value {
        super::apply(keyspace, command, now).into_value()
    }

    fn is_error(value: &Value, code: ErrorCode) -> bool {
        matches!(value, Value::Error(e) if e.code == code as u16)
    }

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn set_cmd(
        key: &'static str,
        value: &'static str,
        condition: SetCondition,
        expiry: SetExpiry,
        get: bool,
    ) -> Command {
        Command::Keys(KeyCommand::Set(SetArgs {
            key: b(key),
            value: b(value),
            condition,
            expiry,
            get,
        }))
    }

    #[test]
    fn set_conditions_and_get_follow_redis() {
        let mut ks = Keyspace::new();
        let nx = set_cmd("k", "1", SetCondition::IfAbsent, SetExpiry::Clear, false);
        assert_eq!(apply(&mut ks, &nx, 0), Value::Ok);
        assert_eq!(apply(&mut ks, &nx, 0), Value::Nil);
        let xx_get = set_cmd("k", "2", SetCondition::IfPresent, SetExpiry::Clear, true);
        assert_eq!(apply(&mut ks, &xx_get, 0), Value::Bytes(b("1")));
        let xx_missing = set_cmd(
            "absent",
            "2",
            SetCondition::IfPresent,
            SetExpiry::Clear,
            false,
        );
        assert_eq!(apply(&mut ks, &xx_missing, 0), Value::Nil);
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Get(b("absent"))), 0),
            Value::Nil
        );
    }

    #[test]
    fn keepttl_keeps_and_plain_set_clears() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            &set_cmd("k", "1", SetCondition::Always, SetExpiry::In(10_000), false),
            0,
        );
        apply(
            &mut ks,
            &set_cmd("k", "2", SetCondition::Always, SetExpiry::Keep, false),
            0,
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("k"))), 1000),
            Value::Int(9000)
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Ttl(b("k"))), 1000),
            Value::Int(9)
        );
        apply(
            &mut ks,
            &set_cmd("k", "3", SetCondition::Always, SetExpiry::Clear, false),
            0,
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Ttl(b("k"))), 1000),
            Value::Int(-1)
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Ttl(b("nope"))), 1000),
            Value::Int(-2)
        );
    }

    #[test]
    fn expire_persist_and_negative_expire() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            &set_cmd("k", "v", SetCondition::Always, SetExpiry::Clear, false),
            0,
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::Expire {
                    key: b("k"),
                    seconds: 5
                }),
                0
            ),
            Value::Int(1)
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Persist(b("k"))), 0),
            Value::Int(1)
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Persist(b("k"))), 0),
            Value::Int(0)
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::PExpire {
                    key: b("k"),
                    millis: 0
                }),
                0
            ),
            Value::Int(1)
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Get(b("k"))), 0),
            Value::Nil
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::Expire {
                    key: b("k"),
                    seconds: 5
                }),
                0
            ),
            Value::Int(0)
        );
        let huge = Command::Keys(KeyCommand::Expire {
            key: b("k"),
            seconds: i64::MAX,
        });
        assert!(is_error(
            &apply(&mut ks, &huge, 0),
            ErrorCode::InvalidExpire
        ));
    }

    #[test]
    fn incr_parses_text_refuses_garbage_and_overflow_and_keeps_ttl() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            &set_cmd("n", "41", SetCondition::Always, SetExpiry::In(5000), false),
            0,
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::IncrBy {
                    key: b("n"),
                    delta: 1
                }),
                0
            ),
            Value::Int(42)
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Get(b("n"))), 0),
            Value::Bytes(b("42"))
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("n"))), 0),
            Value::Int(5000)
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::DecrBy {
                    key: b("fresh"),
                    delta: 3
                }),
                0
            ),
            Value::Int(-3)
        );
        for bad in ["x", " 1", "01", "+1", "99999999999999999999"] {
            ks.insert(b"bad", Blob::new(bad.as_bytes()).into(), None, 0);
            let reply = apply(
                &mut ks,
                &Command::Keys(KeyCommand::IncrBy {
                    key: b("bad"),
                    delta: 1,
                }),
                0,
            );
            assert!(is_error(&reply, ErrorCode::NotInteger), "{bad}");
        }
        ks.insert(b"max", Blob::Int(i64::MAX).into(), None, 0);
        let reply = apply(
            &mut ks,
            &Command::Keys(KeyCommand::IncrBy {
                key: b("max"),
                delta: 1,
            }),
            0,
        );
        assert!(is_error(&reply, ErrorCode::NotInteger));
        let reply = apply(
            &mut ks,
            &Command::Keys(KeyCommand::DecrBy {
                key: b("max"),
                delta: i64::MIN,
            }),
            0,
        );
        assert!(is_error(&reply, ErrorCode::NotInteger));
    }

    #[test]
    fn dedup_first_writer_wins_and_keeps_its_expiry() {
        let mut ks = Keyspace::new();
        let dedup = |key: &'static str, ttl_ms| {
            Command::Dedup(DedupCommand::Check {
                key: b(key),
                ttl_ms,
            })
        };
        assert_eq!(apply(&mut ks, &dedup("imp", 1000), 0), Value::Bool(true));
        assert_eq!(apply(&mut ks, &dedup("imp", 5000), 10), Value::Bool(false));
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("imp"))), 10),
            Value::Int(990)
        );
        assert_eq!(
            apply(&mut ks, &dedup("imp", 1000), 1000),
            Value::Bool(true),
            "seen again after expiry"
        );
        let multi = Command::Dedup(DedupCommand::CheckMany {
            ttl_ms: 1000,
            keys: vec![b("x"), b("imp"), b("x")],
        });
        assert_eq!(
            apply(&mut ks, &multi, 1000),
            Value::Array(vec![
                Value::Bool(true),
                Value::Bool(false),
                Value::Bool(false)
            ])
        );
    }

    #[test]
    fn counter_take_never_passes_the_floor() {
        let mut ks = Keyspace::new();
        let take = |amount, floor| {
            Command::Counters(CounterCommand::Take {
                key: b("c"),
                amount,
                floor,
            })
        };
        let outcome = |taken, remaining| {
            Value::Map(vec![
                (Value::text("taken"), Value::Bool(taken)),
                (Value::text("remaining"), Value::Int(remaining)),
            ])
        };
        assert_eq!(
            apply(&mut ks, &take(1, 0), 0),
            outcome(false, 0),
            "a missing counter is 0"
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::Exists(vec![b("c")])), 0),
            Value::Int(0),
            "a refused take creates nothing"
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Counters(CounterCommand::Put {
                    key: b("c"),
                    amount: 10
                }),
                0
            ),
            Value::Int(10)
        );
        assert_eq!(apply(&mut ks, &take(7, 0), 0), outcome(true, 3));
        assert_eq!(apply(&mut ks, &take(4, 0), 0), outcome(false, 3));
        assert_eq!(apply(&mut ks, &take(4, -1), 0), outcome(true, -1));
        assert_eq!(
            apply(&mut ks, &take(i64::MAX as u64, i64::MIN), 0),
            outcome(true, i64::MIN)
        );
        assert_eq!(
            apply(&mut ks, &take(1, i64::MIN), 0),
            outcome(false, i64::MIN),
            "no wrap-around"
        );
        ks.insert(b"text", Blob::new(b"abc").into(), None, 0);
        let refused = apply(
            &mut ks,
            &Command::Counters(CounterCommand::Take {
                key: b("text"),
                amount: 1,
                floor: 0,
            }),
            0,
        );
        assert!(is_error(&refused, ErrorCode::NotInteger));
    }

    #[test]
    fn id_ranges_are_disjoint_and_contiguous() {
        let mut ks = Keyspace::new();
        let range = |size| {
            Command::Counters(CounterCommand::IdRange {
                key: b("ids"),
                size,
            })
        };
        assert_eq!(
            apply(&mut ks, &range(100), 0),
            Value::Array(vec![Value::Int(1), Value::Int(100)])
        );
        assert_eq!(
            apply(&mut ks, &range(1), 0),
            Value::Array(vec![Value::Int(101), Value::Int(101)])
        );
        ks.insert(b"ids", Blob::Int(i64::MAX - 1).into(), None, 0);
        assert!(
            matches!(apply(&mut ks, &range(2), 0), Value::Error(_)),
            "overflow is refused"
        );
    }

    fn limit(algorithm: Algorithm, tiers: &[(u64, u64)], cost: u64) -> RateLimit {
        let tiers: Vec<Tier> = tiers
            .iter()
            .map(|&(limit, window_ms)| Tier { limit, window_ms })
            .collect();
        RateLimit {
            key: b("client"),
            algorithm,
            cost,
            burst: 0,
            tiers: tessera_protocol::commands::Tiers::new(&tiers).unwrap(),
        }
    }

    fn field(reply: &Value, name: &str) -> Value {
        reply.get(name).cloned().unwrap_or(Value::Nil)
    }

    #[test]
    fn multi_tier_limits_consume_from_all_or_none() {
        let mut ks = Keyspace::new();
        // 3 per second and 5 per minute.
        let check = Command::Limits(LimitCommand::Check(limit(
            Algorithm::Sliding,
            &[(3, 1000), (5, 60_000)],
            1,
        )));
        let allowed = |ks: &mut Keyspace, now| field(&apply(ks, &check, now), "allowed");
        for _ in 0..3 {
            assert_eq!(allowed(&mut ks, 0), Value::Bool(true));
        }
        assert_eq!(
            allowed(&mut ks, 0),
            Value::Bool(false),
            "the per-second tier is full"
        );
        // Seconds later the per-second tier has room, the minute tier has 2 left.
        assert_eq!(allowed(&mut ks, 2000), Value::Bool(true));
        assert_eq!(allowed(&mut ks, 2000), Value::Bool(true));
        let denied = apply(&mut ks, &check, 2000);
        assert_eq!(
            field(&denied, "allowed"),
            Value::Bool(false),
            "the minute tier is full"
        );
        assert_eq!(field(&denied, "remaining"), Value::Int(0));
        assert!(matches!(field(&denied, "retry_after_ms"), Value::Int(ms) if ms > 1000));
    }

    #[test]
    fn a_denied_multi_tier_check_counts_in_no_tier() {
        let tiers = [
            Tier {
                limit: 3,
                window_ms: 1000,
            },
            Tier {
                limit: 1,
                window_ms: 60_000,
            },
        ];
        let mut windows = [Window::default(); 2];
        assert!(decide_windows(&mut windows, &tiers, 1, 0, true).0.allowed);
        let before = windows;
        let (decision, _) = decide_windows(&mut windows, &tiers, 1, 0, true);
        assert!(!decision.allowed, "the minute tier is full");
        assert_eq!(
            windows, before,
            "and the second tier, which had room, counted nothing"
        );
    }

    #[test]
    fn peek_reset_and_wrong_type() {
        let mut ks = Keyspace::new();
        let check = Command::Limits(LimitCommand::Check(limit(Algorithm::Gcra, &[(2, 1000)], 1)));
        let peek = Command::Limits(LimitCommand::Peek(limit(Algorithm::Gcra, &[(2, 1000)], 1)));
        assert_eq!(field(&apply(&mut ks, &peek, 0), "remaining"), Value::Int(1));
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::Exists(vec![b("client")])),
                0
            ),
            Value::Int(0),
            "PEEK creates nothing"
        );
        apply(&mut ks, &check, 0);
        apply(&mut ks, &check, 0);
        assert_eq!(
            field(&apply(&mut ks, &peek, 0), "allowed"),
            Value::Bool(false)
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Limits(LimitCommand::Reset(b("client"))),
                0
            ),
            Value::Int(1)
        );
        assert_eq!(
            field(&apply(&mut ks, &peek, 0), "allowed"),
            Value::Bool(true)
        );
        assert!(matches!(
            apply(&mut ks, &Command::Keys(KeyCommand::Get(b("client"))), 0),
            Value::Nil
        ));
        apply(&mut ks, &check, 0);
        assert!(is_error(
            &apply(&mut ks, &Command::Keys(KeyCommand::Get(b("client"))), 0),
            ErrorCode::WrongType
        ));
        ks.insert(b"text", Blob::new(b"v").into(), None, 0);
        let on_text = Command::Limits(LimitCommand::Check(RateLimit {
            key: b("text"),
            ..limit(Algorithm::Sliding, &[(1, 1000)], 1)
        }));
        assert!(is_error(&apply(&mut ks, &on_text, 0), ErrorCode::WrongType));
    }

    #[test]
    fn idle_rate_limit_state_expires() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            &Command::Limits(LimitCommand::Check(limit(
                Algorithm::Sliding,
                &[(10, 1000)],
                1,
            ))),
            500,
        );
        assert_eq!(
            apply(&mut ks, &Command::Keys(KeyCommand::PTtl(b("client"))), 500),
            Value::Int(1500)
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::Exists(vec![b("client")])),
                2000
            ),
            Value::Int(0)
        );
    }

    #[test]
    fn idempotency_hands_out_one_lease_and_then_the_result() {
        let mut ks = Keyspace::new();
        let begin = Command::Idem(IdemCommand::Begin {
            key: b("pay"),
            ttl_ms: 60_000,
            lease_ms: 100,
        });
        let state = |reply: &Value| field(reply, "state");
        let first = apply(&mut ks, &begin, 0);
        assert_eq!(
            (state(&first), field(&first, "token")),
            (Value::text("new"), Value::Int(1))
        );
        let retry = apply(&mut ks, &begin, 50);
        assert_eq!(state(&retry), Value::text("in_progress"));
        assert_eq!(field(&retry, "retry_after_ms"), Value::Int(50));
        // The first caller crashed: after its lease another takes over with a new token.
        let takeover = apply(&mut ks, &begin, 100);
        assert_eq!(
            (state(&takeover), field(&takeover, "token")),
            (Value::text("new"), Value::Int(2))
        );
        let stale = Command::Idem(IdemCommand::Complete {
            key: b("pay"),
            token: 1,
            result: b("charged"),
        });
        assert!(is_error(&apply(&mut ks, &stale, 120), ErrorCode::Conflict));
        let complete = Command::Idem(IdemCommand::Complete {
            key: b("pay"),
            token: 2,
            result: b("charged"),
        });
        assert_eq!(apply(&mut ks, &complete, 120), Value::Ok);
        let done = apply(&mut ks, &begin, 5000);
        assert_eq!(
            (state(&done), field(&done, "result")),
            (Value::text("done"), Value::Bytes(b("charged")))
        );
        assert!(is_error(
            &apply(&mut ks, &complete, 130),
            ErrorCode::Conflict
        ));
        assert_eq!(
            apply(&mut ks, &Command::Idem(IdemCommand::Get(b("pay"))), 130),
            done
        );
        // The record, result included, lives for its ttl.
        assert_eq!(
            apply(&mut ks, &Command::Idem(IdemCommand::Get(b("pay"))), 60_000),
            Value::Nil
        );
        let missing = Command::Idem(IdemCommand::Complete {
            key: b("gone"),
            token: 1,
            result: b("x"),
        });
        assert!(is_error(&apply(&mut ks, &missing, 0), ErrorCode::NotFound));
    }

    #[test]
    fn versioned_values_compare_and_set() {
        let mut ks = Keyspace::new();
        let vset = |value: &'static str, if_version| {
            Command::Versioned(VersionedCommand::Set {
                key: b("spot"),
                value: b(value),
                if_version,
                ttl_ms: None,
            })
        };
        let outcome = |ok, version| {
            Value::Map(vec![
                (Value::text("ok"), Value::Bool(ok)),
                (Value::text("version"), Value::Int(version)),
            ])
        };
        assert_eq!(
            apply(&mut ks, &vset("free", Some(0)), 0),
            outcome(true, 1),
            "0 = must not exist"
        );
        assert_eq!(apply(&mut ks, &vset("x", Some(0)), 0), outcome(false, 1));
        assert_eq!(apply(&mut ks, &vset("held", Some(1)), 0), outcome(true, 2));
        assert_eq!(
            apply(&mut ks, &vset("stale", Some(1)), 0),
            outcome(false, 2),
            "a stale version loses"
        );
        assert_eq!(apply(&mut ks, &vset("forced", None), 0), outcome(true, 3));
        assert_eq!(
            apply(
                &mut ks,
                &Command::Versioned(VersionedCommand::Get(b("spot"))),
                0
            ),
            Value::Map(vec![
                (Value::text("value"), Value::Bytes(b("forced"))),
                (Value::text("version"), Value::Int(3))
            ])
        );
        let expiring = Command::Versioned(VersionedCommand::Set {
            key: b("spot"),
            value: b("v"),
            if_version: Some(3),
            ttl_ms: Some(100),
        });
        assert_eq!(apply(&mut ks, &expiring, 0), outcome(true, 4));
        assert_eq!(
            apply(
                &mut ks,
                &Command::Versioned(VersionedCommand::Get(b("spot"))),
                100
            ),
            Value::Nil,
            "expired with its ttl"
        );
        assert_eq!(
            apply(&mut ks, &vset("again", Some(0)), 100),
            outcome(true, 1),
            "and starts over"
        );
        ks.insert(b"plain", Blob::new(b"v").into(), None, 0);
        let on_plain = Command::Versioned(VersionedCommand::Set {
            key: b("plain"),
            value: b("v"),
            if_version: None,
            ttl_ms: None,
        });
        assert!(is_error(
            &apply(&mut ks, &on_plain, 0),
            ErrorCode::WrongType
        ));
    }

    #[test]
    fn store_figures_follow_every_change_to_its_skus() {
        let mut ks = Keyspace::new();
        let figures = |ks: &mut Keyspace| {
            let reply = apply(ks, &Command::Inventory(InventoryCommand::Store(b("s1"))), 0);
            (
                field(&reply, "skus"),
                field(&reply, "sold_out"),
                field(&reply, "low_stock"),
            )
        };
        let set = |sku: &'static str, on_hand, low| {
            Command::Inventory(InventoryCommand::Set {
                sku: b(sku),
                on_hand,
                low,
            })
        };
        apply(&mut ks, &set("{s1}:milk", 3, Some(1)), 0);
        apply(&mut ks, &set("{s1}:eggs", 0, None), 0);
        apply(&mut ks, &set("other", 0, None), 0);
        assert_eq!(
            figures(&mut ks),
            (Value::Int(2), Value::Int(1), Value::Int(0))
        );
        let reserve = Command::Inventory(InventoryCommand::Reserve {
            sku: b("{s1}:milk"),
            qty: 2,
            ttl_ms: 100,
            id: None,
        });
        apply(&mut ks, &reserve, 0);
        assert_eq!(
            figures(&mut ks),
            (Value::Int(2), Value::Int(1), Value::Int(1)),
            "one left is low"
        );
        expire_reservations(&mut ks, b"{s1}:milk", 100);
        assert_eq!(
            figures(&mut ks),
            (Value::Int(2), Value::Int(1), Value::Int(0)),
            "the lapse gave it back"
        );
        apply(
            &mut ks,
            &Command::Inventory(InventoryCommand::Adjust {
                sku: b("{s1}:eggs"),
                delta: 5,
            }),
            0,
        );
        assert_eq!(
            figures(&mut ks),
            (Value::Int(2), Value::Int(0), Value::Int(0))
        );
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Del(vec![b("{s1}:eggs")])),
            0,
        );
        assert_eq!(
            figures(&mut ks),
            (Value::Int(1), Value::Int(0), Value::Int(0))
        );
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::Set(SetArgs {
                key: b("{s1}:milk"),
                value: b("x"),
                condition: SetCondition::Always,
                expiry: SetExpiry::Clear,
                get: false,
            })),
            0,
        );
        assert_eq!(
            figures(&mut ks),
            (Value::Int(0), Value::Int(0), Value::Int(0)),
            "overwritten by a string"
        );
    }

    #[test]
    fn presence_lasts_ttl_plus_grace_and_leave_ends_it() {
        let mut ks = Keyspace::new();
        let beat = |ttl_ms, meta: Option<&'static str>| {
            Command::Presence(PresenceCommand::Beat {
                user: b("u"),
                ttl_ms,
                grace_ms: 50,
                meta: meta.map(b),
            })
        };
        let online = |ks: &mut Keyspace, now| {
            let Value::Array(rows) = apply(
                ks,
                &Command::Presence(PresenceCommand::Get(vec![b("u"), b("nobody")])),
                now,
            ) else {
                panic!("array")
            };
            assert_eq!(rows[1], Value::Nil, "never seen");
            let Value::Array(row) = &rows[0] else {
                panic!("a row")
            };
            (row[0].clone(), row[1].clone(), row[2].clone())
        };
        assert_eq!(
            apply(&mut ks, &beat(100, Some("eu/ios")), 0),
            Value::Bool(true),
            "came online"
        );
        assert_eq!(
            apply(&mut ks, &beat(100, None), 60),
            Value::Bool(false),
            "already online"
        );
        assert_eq!(
            online(&mut ks, 200),
            (
                Value::Bool(true),
                Value::Int(140),
                Value::Bytes(b("eu/ios"))
            ),
            "grace"
        );
        assert_eq!(
            online(&mut ks, 210).0,
            Value::Bool(false),
            "offline at last beat + ttl + grace"
        );
        assert_eq!(
            apply(&mut ks, &beat(100, None), 300),
            Value::Bool(true),
            "a reconnect after the grace"
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Presence(PresenceCommand::Leave(b("u"))),
                310
            ),
            Value::Int(1)
        );
        assert_eq!(
            online(&mut ks, 311).0,
            Value::Bool(false),
            "a clean leave is at once"
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Presence(PresenceCommand::Leave(b("u"))),
                312
            ),
            Value::Int(0)
        );
    }

    #[test]
    fn multi_key_parts() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            &Command::Keys(KeyCommand::MSet(vec![(b("a"), b("1")), (b("b"), b("2"))])),
            0,
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::MGet(vec![b("a"), b("x"), b("b")])),
                0
            ),
            Value::Array(vec![Value::Bytes(b("1")), Value::Nil, Value::Bytes(b("2"))])
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::Exists(vec![b("a"), b("a"), b("x")])),
                0
            ),
            Value::Int(2)
        );
        assert_eq!(
            apply(
                &mut ks,
                &Command::Keys(KeyCommand::Del(vec![b("a"), b("x")])),
                0
            ),
            Value::Int(1)
        );
        assert_eq!(
            apply(&mut ks, &Command::Admin(AdminCommand::DbSize), 0),
            Value::Int(1)
        );
        assert_eq!(
            apply(&mut ks, &Command::Admin(AdminCommand::FlushAll), 0),
            Value::Ok
        );
        assert_eq!(
            apply(&mut ks, &Command::Admin(AdminCommand::DbSize), 0),
            Value::Int(0)
        );
    }
}
