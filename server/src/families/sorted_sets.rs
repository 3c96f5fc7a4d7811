//! The Z* commands on one shard, over `data::score_set::ScoreSet`.

use super::*;
pub use crate::data::score_set::ScoreSet;
use tessera_protocol::commands::hashes::Finite;
use tessera_protocol::commands::sorted_sets::{add_flags, Selection, SortedSetCommand};

/// Runs one of the family's commands on this shard's keyspace.
pub fn apply<P: Payload>(
    keyspace: &mut Keyspace,
    command: &SortedSetCommand<P>,
    now: u64,
) -> Value {
    use SortedSetCommand as Z;
    let key = command.single_key().map_or(&[][..], AsRef::as_ref);
    let result = match command {
        Z::Add { flags, pairs, .. } => {
            write(keyspace, key, now, true, |set| add(set, *flags, pairs))
        }
        Z::IncrBy { delta, member, .. } => write(keyspace, key, now, true, |set| {
            let pair = [(*delta, member)];
            add(set, add_flags::INCR, &pair)
        }),
        Z::Rem { members, .. } => write(keyspace, key, now, false, |set| {
            let removed = members.iter().filter(|m| set.remove(m.as_ref())).count();
            Ok(Value::Int(removed as i64))
        }),
        Z::Pop { count, max, .. } => write(keyspace, key, now, false, |set| {
            let len = set.len();
            let take = (*count as usize).min(len);
            let (from, to) = if *max { (len - take, len) } else { (0, take) };
            let mut popped = set.ranks(from, to);
            if *max {
                popped.reverse();
            }
            for (member, _) in &popped {
                set.remove(member);
            }
            Ok(scored(popped))
        }),
        Z::RemRangeByScore { min, max, .. } => write(keyspace, key, now, false, |set| {
            let (from, to) = set.score_span(*min, *max);
            Ok(remove_ranks(set, from, to))
        }),
        Z::RemRangeByRank { start, stop, .. } => write(keyspace, key, now, false, |set| {
            let (from, to) = set.rank_span(*start, *stop);
            Ok(remove_ranks(set, from, to))
        }),
        Z::RandMember { count, .. } => rand_member(keyspace, key, *count, now),
        _ => read(keyspace, key, now, command),
    };
    result.unwrap_or_else(Value::Error)
}

/// ZRANDMEMBER: ranks picked first (distinct for a positive count, with repeats for a
/// negative one), then only the picked members copied out.
fn rand_member(
    keyspace: &mut Keyspace,
    key: &[u8],
    count: Option<(i64, bool)>,
    now: u64,
) -> Result<Value, ErrorReply> {
    let len = match keyspace.get(key, now) {
        Some(Stored::SortedSet(set)) => set.len(),
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        None => 0,
    };
    let (wanted, with_scores) = count.unwrap_or((1, false));
    if len == 0 {
        return Ok(if count.is_some() {
            Value::Array(vec![])
        } else {
            Value::Nil
        });
    }
    let limit = keyspace.reply_limit;
    within_reply_limit(wanted.unsigned_abs().saturating_mul(4) as usize, limit)?;
    let picks = super::random_positions(keyspace, len, wanted);
    let Some(Stored::SortedSet(set)) = keyspace.get(key, now) else {
        return Ok(Value::Nil);
    };
    let entries = set.entries();
    let size: usize = picks.iter().map(|&at| entries[at].0.len() + 8).sum();
    within_reply_limit(size, limit)?;
    let reply = |at: usize| {
        let (member, score) = entries[at].clone();
        match with_scores {
            true => Value::Array(vec![Value::Bytes(member), Value::Float(score)]),
            false => Value::Bytes(member),
        }
    };
    Ok(match count {
        None => reply(picks[0]),
        Some(_) => Value::Array(picks.into_iter().map(reply).collect()),
    })
}

/// ZADD (and ZINCRBY, as ZADD INCR) on `set`.
pub(crate) fn add<M: AsRef<[u8]>>(
    set: &mut ScoreSet,
    flags: u8,
    pairs: &[(Finite, M)],
) -> Result<Value, ErrorReply> {
    let flag = |bit| flags & bit != 0;
    let mut counted = 0;
    for (score, member) in pairs {
        let member = member.as_ref();
        let current = set.score(member);
        let mut next = score.get();
        if flag(add_flags::INCR) {
            next += current.unwrap_or(0.0);
            if next.is_nan() {
                return Err(ErrorReply::new(
                    ErrorCode::NotFloat,
                    "resulting score is not a number (NaN)",
                ));
            }
        }
        let allowed = match current {
            None => !flag(add_flags::XX),
            Some(current) => {
                let refused = flag(add_flags::NX)
                    || (flag(add_flags::GT) && next <= current)
                    || (flag(add_flags::LT) && next >= current);
                !refused
            }
        };
        if !allowed {
            if flag(add_flags::INCR) {
                return Ok(Value::Nil);
            }
            continue;
        }
        let changed = current != Some(next);
        if changed {
            set.put(next, member);
        }
        if current.is_none() || (flag(add_flags::CH) && changed) {
            counted += 1;
        }
        if flag(add_flags::INCR) {
            return Ok(Value::Float(next));
        }
    }
    Ok(Value::Int(counted))
}

fn remove_ranks(set: &mut ScoreSet, from: usize, to: usize) -> Value {
    let doomed = set.ranks(from, to);
    for (member, _) in &doomed {
        set.remove(member);
    }
    Value::Int(doomed.len() as i64)
}

/// `[member, score]` pairs as the reply carries them.
fn scored(entries: Vec<(Bytes, f64)>) -> Value {
    Value::Array(
        entries
            .into_iter()
            .map(|(member, score)| Value::Array(vec![Value::Bytes(member), Value::Float(score)]))
            .collect(),
    )
}

/// ZRANGE without scores, its members lent out of the keyspace until the reply is
/// written.
///
/// # Errors
/// WRONGTYPE for a key of another kind.
pub fn range_members<'a>(
    keyspace: &'a mut Keyspace,
    key: &[u8],
    selection: Selection,
    rev: bool,
    limit: Option<(i64, i64)>,
    now: u64,
) -> Result<Vec<&'a [u8]>, Value> {
    let reply_limit = keyspace.reply_limit;
    match keyspace.get(key, now) {
        Some(Stored::SortedSet(set)) => {
            let (from, to) = set.select(selection, rev, limit);
            within_count_limit(to.saturating_sub(from), reply_limit).map_err(Value::Error)?;
            let mut members = set.members(from, to);
            within_members_limit(&members, reply_limit).map_err(Value::Error)?;
            if rev {
                members.reverse();
            }
            Ok(members)
        }
        Some(_) => Err(wrong_type()),
        None => Ok(Vec::new()),
    }
}

/// The entries ZRANGE would select, with their scores, for ZRANGESTORE (which stores
/// them, so no reply bound applies).
///
/// # Errors
/// WRONGTYPE for a key of another kind.
pub fn range_entries(
    keyspace: &mut Keyspace,
    key: &[u8],
    selection: Selection,
    rev: bool,
    limit: Option<(i64, i64)>,
    now: u64,
) -> Result<Vec<(Bytes, f64)>, Value> {
    match keyspace.get(key, now) {
        Some(Stored::SortedSet(set)) => {
            let (from, to) = set.select(selection, rev, limit);
            Ok(set.ranks(from, to))
        }
        Some(_) => Err(wrong_type()),
        None => Ok(Vec::new()),
    }
}

/// Bytes a ZRANGE reply counts per member besides the member itself (its score).
const PER_MEMBER: usize = 9;

/// Refuses a ZRANGE of `count` members before even their list is made, when their scores
/// alone would outgrow `limit`.
fn within_count_limit(count: usize, limit: usize) -> Result<(), ErrorReply> {
    super::within_reply_limit(count.saturating_mul(PER_MEMBER), limit)
}

/// Refuses a ZRANGE whose `members` (and a score each) would outgrow `limit`.
fn within_members_limit(members: &[&[u8]], limit: usize) -> Result<(), ErrorReply> {
    let bytes: usize = members.iter().map(|m| m.len() + PER_MEMBER).sum();
    super::within_reply_limit(bytes, limit)
}

/// The reads: ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZRANGE, ZCARD, ZCOUNT.
fn read<P: Payload>(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    command: &SortedSetCommand<P>,
) -> Result<Value, ErrorReply> {
    use SortedSetCommand as Z;
    let reply_limit = keyspace.reply_limit;
    let empty = ScoreSet::default();
    let set = match keyspace.get(key, now) {
        Some(Stored::SortedSet(set)) => set,
        Some(_) => return Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        None => &empty,
    };
    let score_of = |member: &P| set.score(member.as_ref()).map_or(Value::Nil, Value::Float);
    Ok(match command {
        Z::Score { member, .. } => score_of(member),
        Z::MScore { members, .. } => Value::Array(members.iter().map(score_of).collect()),
        Z::Rank {
            member,
            rev,
            with_score,
            ..
        } => match set.position(member.as_ref()) {
            Some((rank, score)) => {
                let rank = if *rev { set.len() - 1 - rank } else { rank };
                if *with_score {
                    Value::Array(vec![Value::Int(rank as i64), Value::Float(score)])
                } else {
                    Value::Int(rank as i64)
                }
            }
            _ => Value::Nil,
        },
        Z::Range {
            selection,
            rev,
            limit,
            with_scores,
            ..
        } => {
            let (from, to) = set.select(*selection, *rev, *limit);
            within_count_limit(to.saturating_sub(from), reply_limit)?;
            within_members_limit(&set.members(from, to), reply_limit)?;
            let mut entries = set.ranks(from, to);
            if *rev {
                entries.reverse();
            }
            if *with_scores {
                scored(entries)
            } else {
                Value::Array(entries.into_iter().map(|(m, _)| Value::Bytes(m)).collect())
            }
        }
        Z::Card(_) => Value::Int(set.len() as i64),
        Z::Count { min, max, .. } => {
            let (from, to) = set.score_span(*min, *max);
            Value::Int((to - from) as i64)
        }
        _ => Value::error(ErrorCode::Internal, "not a sorted-set read"),
    })
}

/// Runs a write on the set at `key`; a missing key is created only if `create`, else the
/// write sees an empty set and stores nothing. The key goes with its last member.
pub(crate) fn write(
    keyspace: &mut Keyspace,
    key: &[u8],
    now: u64,
    create: bool,
    change: impl FnOnce(&mut ScoreSet) -> Result<Value, ErrorReply>,
) -> Result<Value, ErrorReply> {
    let found = keyspace.find(key, now);
    if !found.exists() {
        let mut set = ScoreSet::default();
        let reply = change(&mut set)?;
        if create && !set.is_empty() {
            keyspace.write(found, key, Stored::SortedSet(set), None);
        }
        return Ok(reply);
    }
    let outcome = keyspace.update(&found, |stored| match stored {
        Stored::SortedSet(set) => Some((change(set), set.is_empty())),
        _ => None,
    });
    match outcome.flatten() {
        None => Err(ErrorReply::new(ErrorCode::WrongType, WRONG_TYPE)),
        Some((reply, empty)) => {
            if empty {
                keyspace.remove(key, now);
            }
            reply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(keyspace: &mut Keyspace, line: &str) -> Value {
        let words: Vec<Bytes> = line
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        match Command::parse_words(&words) {
            Ok(command) => super::super::apply(keyspace, &command, 0).into_value(),
            Err(refused) => Value::Error(refused),
        }
    }

    fn members(value: Value) -> Vec<String> {
        let Value::Array(items) = value else {
            panic!("{value:?}")
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::Bytes(m) => String::from_utf8_lossy(&m).into_owned(),
                Value::Array(pair) => format!("{:?}", pair),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn zadd_flags_follow_redis() {
        let mut ks = Keyspace::new();
        assert_eq!(run(&mut ks, "zadd z 1 a 2 b"), Value::Int(2));
        assert_eq!(run(&mut ks, "zadd z NX 5 a 3 c"), Value::Int(1));
        assert_eq!(run(&mut ks, "zscore z a"), Value::Float(1.0));
        assert_eq!(run(&mut ks, "zadd z XX CH 7 a 9 d"), Value::Int(1));
        assert_eq!(run(&mut ks, "zscore z d"), Value::Nil);
        assert_eq!(
            run(&mut ks, "zadd z GT CH 6 a 8 b"),
            Value::Int(1),
            "a stays 7, b rises"
        );
        assert_eq!(run(&mut ks, "zadd z LT 1 c 100 b"), Value::Int(0));
        assert_eq!(
            run(&mut ks, "zmscore z a b c x"),
            Value::Array(vec![
                Value::Float(7.0),
                Value::Float(8.0),
                Value::Float(1.0),
                Value::Nil
            ])
        );
        assert_eq!(run(&mut ks, "zadd z INCR 2.5 a"), Value::Float(9.5));
        assert_eq!(run(&mut ks, "zadd z NX INCR 1 a"), Value::Nil);
        assert_eq!(run(&mut ks, "zincrby z -1.5 new"), Value::Float(-1.5));
        assert!(
            matches!(run(&mut ks, "zadd z NX XX 1 a"), Value::Error(e) if e.known_code() == Some(ErrorCode::Syntax))
        );
        assert!(
            matches!(run(&mut ks, "zadd z GT LT 1 a"), Value::Error(e) if e.known_code() == Some(ErrorCode::Syntax))
        );
        assert!(
            matches!(run(&mut ks, "zadd z INCR 1 a 2 b"), Value::Error(e) if e.known_code() == Some(ErrorCode::Syntax))
        );
        assert!(
            matches!(run(&mut ks, "zadd z nan a"), Value::Error(e) if e.known_code() == Some(ErrorCode::NotFloat))
        );
        run(&mut ks, "zadd inf +inf a");
        assert!(
            matches!(run(&mut ks, "zincrby inf -inf a"), Value::Error(e) if e.known_code() == Some(ErrorCode::NotFloat))
        );
    }

    #[test]
    fn ranges_ranks_and_removals_follow_redis() {
        let mut ks = Keyspace::new();
        run(&mut ks, "zadd lb 10 ann 20 bob 20 bea 30 cid 40 dan");
        assert_eq!(
            members(run(&mut ks, "zrange lb 0 -1")),
            ["ann", "bea", "bob", "cid", "dan"]
        );
        assert_eq!(members(run(&mut ks, "zrange lb 0 1 REV")), ["dan", "cid"]);
        assert_eq!(members(run(&mut ks, "zrange lb -2 -1")), ["cid", "dan"]);
        assert_eq!(members(run(&mut ks, "zrange lb 3 1")), Vec::<String>::new());
        assert_eq!(
            members(run(&mut ks, "zrange lb (10 30 BYSCORE")),
            ["bea", "bob", "cid"]
        );
        assert_eq!(
            members(run(&mut ks, "zrange lb +inf -inf BYSCORE REV LIMIT 1 2")),
            ["cid", "bob"]
        );
        assert_eq!(
            members(run(&mut ks, "zrange lb -inf +inf BYSCORE LIMIT 3 -1")),
            ["cid", "dan"]
        );
        assert_eq!(run(&mut ks, "zrank lb bob"), Value::Int(2));
        assert_eq!(
            run(&mut ks, "zrevrank lb bob WITHSCORE"),
            Value::Array(vec![Value::Int(2), Value::Float(20.0)])
        );
        assert_eq!(run(&mut ks, "zrank lb nobody"), Value::Nil);
        assert_eq!(run(&mut ks, "zcount lb 20 (40"), Value::Int(3));
        assert_eq!(run(&mut ks, "zcard lb"), Value::Int(5));
        assert!(
            matches!(run(&mut ks, "zrange lb 0 1 LIMIT 0 1"), Value::Error(e) if e.known_code() == Some(ErrorCode::Syntax))
        );
        assert_eq!(
            run(&mut ks, "zpopmin lb 2"),
            Value::Array(vec![
                Value::Array(vec![
                    Value::Bytes(Bytes::from_static(b"ann")),
                    Value::Float(10.0)
                ]),
                Value::Array(vec![
                    Value::Bytes(Bytes::from_static(b"bea")),
                    Value::Float(20.0)
                ]),
            ])
        );
        assert_eq!(members(run(&mut ks, "zpopmax lb")).len(), 1);
        assert_eq!(run(&mut ks, "zremrangebyscore lb -inf 20"), Value::Int(1));
        assert_eq!(run(&mut ks, "zremrangebyrank lb 0 -1"), Value::Int(1));
        assert!(!ks.contains(b"lb", 0), "the key goes with its last member");
        assert_eq!(run(&mut ks, "zrem lb x"), Value::Int(0));
        assert!(!ks.contains(b"lb", 0));
    }

    #[test]
    fn a_large_set_orders_ranks_and_counts_like_a_sorted_model() {
        let mut ks = Keyspace::new();
        let mut model: Vec<(f64, String)> = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for step in 0..3_000 {
            let member = format!("m{}", next() % 1_200);
            let score = (next() % 500) as f64 / 4.0;
            if step % 7 == 3 {
                run(&mut ks, &format!("zrem big {member}"));
                model.retain(|(_, m)| *m != member);
            } else {
                run(&mut ks, &format!("zadd big {score} {member}"));
                model.retain(|(_, m)| *m != member);
                model.push((score, member));
            }
        }
        model.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        assert!(matches!(
            ks.get(b"big", 0),
            Some(Stored::SortedSet(ScoreSet::Indexed(_)))
        ));
        assert_eq!(run(&mut ks, "zcard big"), Value::Int(model.len() as i64));
        let all = members(run(&mut ks, "zrange big 0 -1"));
        assert_eq!(
            all,
            model.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()
        );
        for (rank, (_, member)) in model.iter().enumerate().step_by(37) {
            assert_eq!(
                run(&mut ks, &format!("zrank big {member}")),
                Value::Int(rank as i64)
            );
        }
        let inside = model
            .iter()
            .filter(|(s, _)| *s >= 20.0 && *s < 70.5)
            .count();
        assert_eq!(
            run(&mut ks, "zcount big 20 (70.5"),
            Value::Int(inside as i64)
        );
        let page = members(run(&mut ks, "zrange big 100 109"));
        assert_eq!(
            page,
            model[100..110]
                .iter()
                .map(|(_, m)| m.clone())
                .collect::<Vec<_>>()
        );
    }
}
