//! Rate limits on one shard: sliding windows and GCRA over up to four tiers.

use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(keyspace: &mut Keyspace, command: &LimitCommand<P>, now: u64) -> Value {
    match command {
        LimitCommand::Check(limit) => rate_limit(keyspace, limit, now, true),
        LimitCommand::Peek(limit) => rate_limit(keyspace, limit, now, false),
        LimitCommand::Reset(key) => {
            let found = keyspace.find(key.as_ref(), now);
            match keyspace.value(&found) {
                Some(state) if state.is_rate_limit() => {
                    Value::Int(i64::from(keyspace.remove(key.as_ref(), now)))
                }
                Some(_) => wrong_type(),
                None => Value::Int(0),
            }
        }
    }
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
        _ => unreachable!("other kinds were refused with WRONGTYPE before deciding"),
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
pub(super) fn decide_windows(
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
    let mut decision = Decision::all(decisions.into_iter().flatten());
    if consume && decision.allowed {
        windows.iter_mut().for_each(|w| w.consume(cost));
    }
    if !decision.allowed {
        // A denied request is counted in no tier, so what remains is what each tier has
        // left now, not what a tier that would have allowed it would keep after it.
        decision.remaining = windows
            .iter()
            .zip(tiers)
            .map(|(w, t)| w.decide(as_limit(t), now, 0).remaining)
            .min()
            .unwrap_or(0);
    }
    let idle = windows
        .iter()
        .zip(tiers)
        .map(|(w, t)| w.idle_deadline(t.window_ms))
        .max()
        .unwrap_or(now);
    (decision, idle)
}
