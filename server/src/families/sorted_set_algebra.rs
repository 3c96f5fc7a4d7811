//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD on one shard: the inputs read
//! whole (a set counts as a sorted set of score 1), combined, and answered or stored.

use hashbrown::HashMap;
use tessera_protocol::commands::sorted_set_algebra::{
    Aggregate, Inputs, SetAlgebra, SortedSetAlgebraCommand,
};

use super::sorted_sets::ScoreSet;
use super::*;

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(
    keyspace: &mut Keyspace,
    command: &SortedSetAlgebraCommand<P>,
    now: u64,
) -> Value {
    match command {
        SortedSetAlgebraCommand::Combine {
            op,
            inputs,
            with_scores,
        } => match combine(keyspace, *op, inputs, now) {
            Ok(entries) => {
                let size: usize = entries.iter().map(|(m, _)| m.len() + 8).sum();
                if let Err(refusal) = within_reply_limit(size, keyspace.reply_limit) {
                    return Value::Error(refusal);
                }
                Value::Array(
                    entries
                        .into_iter()
                        .map(|(member, score)| match with_scores {
                            true => Value::Array(vec![Value::Bytes(member), Value::Float(score)]),
                            false => Value::Bytes(member),
                        })
                        .collect(),
                )
            }
            Err(error) => error,
        },
        SortedSetAlgebraCommand::Store {
            op,
            destination,
            inputs,
        } => match combine(keyspace, *op, inputs, now) {
            Ok(entries) => store(keyspace, destination.as_ref(), entries, now),
            Err(error) => error,
        },
        SortedSetAlgebraCommand::RangeStore { destination, range } => {
            let SortedSetCommand::Range {
                key,
                selection,
                rev,
                limit,
                ..
            } = range
            else {
                return Value::error(ErrorCode::Internal, "ZRANGESTORE carries a ZRANGE");
            };
            let entries = match super::sorted_sets::range_entries(
                keyspace,
                key.as_ref(),
                *selection,
                *rev,
                *limit,
                now,
            ) {
                Ok(entries) => entries,
                Err(error) => return error,
            };
            store(keyspace, destination.as_ref(), entries, now)
        }
        SortedSetAlgebraCommand::InterCard { keys, limit } => {
            let inputs = Inputs {
                keys: keys
                    .iter()
                    .map(|k| Bytes::copy_from_slice(k.as_ref()))
                    .collect(),
                weights: None,
                aggregate: Aggregate::Sum,
            };
            match combine(keyspace, SetAlgebra::Inter, &inputs, now) {
                Ok(entries) => {
                    let count = entries.len() as u64;
                    Value::Int(if *limit == 0 {
                        count
                    } else {
                        count.min(*limit)
                    } as i64)
                }
                Err(error) => error,
            }
        }
    }
}

/// Replaces `destination` with a sorted set of `entries` (none deletes it); answers how
/// many were stored.
pub(crate) fn store(
    keyspace: &mut Keyspace,
    destination: &[u8],
    entries: Vec<(Bytes, f64)>,
    now: u64,
) -> Value {
    let stored = entries.len() as i64;
    keyspace.remove(destination, now);
    if stored > 0 {
        let set = Stored::SortedSet(ScoreSet::from_entries(entries));
        keyspace.insert(destination, set, None, now);
    }
    Value::Int(stored)
}

/// A sorted set's entries, a set's members at score 1, or none for a missing key.
fn entries_of(keyspace: &mut Keyspace, key: &[u8], now: u64) -> Result<Vec<(Bytes, f64)>, Value> {
    match keyspace.get(key, now) {
        None => Ok(Vec::new()),
        Some(Stored::SortedSet(set)) => Ok(set.entries()),
        Some(Stored::Set(members)) => Ok(members
            .iter()
            .map(|member| (Bytes::copy_from_slice(member), 1.0))
            .collect()),
        Some(_) => Err(wrong_type()),
    }
}

/// A score times its weight; the NaN of an infinity times 0 counts as 0, as in Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let product = score * weight;
    if product.is_nan() {
        0.0
    } else {
        product
    }
}

fn aggregate(how: Aggregate, a: f64, b: f64) -> f64 {
    match how {
        Aggregate::Sum => {
            let sum = a + b;
            // Opposite infinities.
            if sum.is_nan() {
                0.0
            } else {
                sum
            }
        }
        Aggregate::Min => a.min(b),
        Aggregate::Max => a.max(b),
    }
}

/// The combination's entries, lowest score first (ties by member).
fn combine<P: Payload>(
    keyspace: &mut Keyspace,
    op: SetAlgebra,
    inputs: &Inputs<P>,
    now: u64,
) -> Result<Vec<(Bytes, f64)>, Value> {
    let weight = |at: usize| {
        inputs
            .weights
            .as_ref()
            .and_then(|w| w.get(at))
            .map_or(1.0, |w| w.get())
    };
    // Every input is read (and its kind checked) before any is combined, as in Redis.
    let mut all = Vec::with_capacity(inputs.keys.len());
    for key in &inputs.keys {
        all.push(entries_of(keyspace, key.as_ref(), now)?);
    }
    let mut result: HashMap<Bytes, f64> = HashMap::new();
    match op {
        SetAlgebra::Union => {
            for (at, entries) in all.into_iter().enumerate() {
                for (member, score) in entries {
                    let score = weighted(score, weight(at));
                    result
                        .entry(member)
                        .and_modify(|s| *s = aggregate(inputs.aggregate, *s, score))
                        .or_insert(score);
                }
            }
        }
        SetAlgebra::Inter => {
            let mut inputs_left = all.into_iter().enumerate();
            if let Some((at, first)) = inputs_left.next() {
                result = first
                    .into_iter()
                    .map(|(member, score)| (member, weighted(score, weight(at))))
                    .collect();
            }
            for (at, entries) in inputs_left {
                let scores: HashMap<Bytes, f64> = entries.into_iter().collect();
                result.retain(|member, score| match scores.get(member) {
                    Some(other) => {
                        *score = aggregate(inputs.aggregate, *score, weighted(*other, weight(at)));
                        true
                    }
                    None => false,
                });
            }
        }
        SetAlgebra::Diff => {
            let mut inputs_left = all.into_iter();
            if let Some(first) = inputs_left.next() {
                result = first.into_iter().collect();
            }
            for entries in inputs_left {
                for (member, _) in entries {
                    result.remove(&member);
                }
            }
        }
    }
    let mut entries: Vec<(Bytes, f64)> = result.into_iter().collect();
    entries.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(entries)
}
