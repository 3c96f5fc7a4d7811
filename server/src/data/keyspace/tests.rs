//! The keyspace against a model, expiry, and snapshots taken while it changes.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn bytes(v: &str) -> Blob {
    Blob::new(v.as_bytes())
}

#[test]
fn lazy_expiry_hides_and_removes_on_access() {
    let mut ks = Keyspace::new();
    ks.insert(b"k", bytes("v"), Some(100), 0);
    assert_eq!(ks.get(b"k", 99), Some(&bytes("v")));
    assert_eq!(ks.get(b"k", 100), None);
    assert_eq!(ks.len(), 0);
    assert_eq!(ks.expired_total(), 1);
    ks.check_invariants();
}

#[test]
fn active_expiry_collects_without_access() {
    let mut ks = Keyspace::new();
    for i in 0..1000 {
        ks.insert(format!("t{i}").as_bytes(), bytes("v"), Some(10), 0);
        ks.insert(format!("p{i}").as_bytes(), bytes("v"), None, 0);
    }
    let mut cycles = 0;
    while ks.volatile_len() > 0 && cycles < 1000 {
        ks.expire_cycle(11, std::time::Duration::from_millis(25));
        cycles += 1;
    }
    assert_eq!(ks.len(), 1000, "only the keys with deadlines went");
    assert_eq!(ks.volatile_len(), 0);
    ks.check_invariants();
}

#[test]
fn active_expiry_stops_early_when_little_has_expired() {
    let mut ks = Keyspace::new();
    for i in 0..1000 {
        ks.insert(format!("k{i}").as_bytes(), bytes("v"), Some(1_000_000), 0);
    }
    assert_eq!(ks.expire_cycle(5, std::time::Duration::from_millis(25)), 0);
    assert_eq!(ks.len(), 1000);
}

#[test]
fn one_cycle_keeps_going_while_many_sampled_keys_have_expired() {
    let mut ks = Keyspace::new();
    for i in 0..100_000 {
        ks.insert(format!("gone{i}").as_bytes(), bytes("v"), Some(10), 0);
    }
    for i in 0..10_000 {
        ks.insert(
            format!("live{i}").as_bytes(),
            bytes("v"),
            Some(1_000_000),
            0,
        );
    }
    // With time enough, one cycle goes on until a sample shows few expired keys: far past
    // a fixed number of rounds.
    let removed = ks.expire_cycle(11, std::time::Duration::from_secs(60));
    let stale = ks.volatile_len() - 10_000;
    assert!(removed > 50_000, "removed only {removed}");
    assert!(
        stale * 100 <= ks.volatile_len() * 40,
        "{stale} of {} volatile keys are still stale after one cycle",
        ks.volatile_len()
    );
    assert_eq!(ks.len(), ks.volatile_len());
    ks.check_invariants();
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, Option<u64>),
    Remove(u8),
    SetDeadline(u8, Option<u64>),
    Get(u8),
    Advance(u64),
    Cycle,
}

fn op() -> impl Strategy<Value = Op> {
    let deadline = proptest::option::of(1u64..50);
    prop_oneof![
        (0u8..16, deadline.clone()).prop_map(|(k, d)| Op::Insert(k, d)),
        (0u8..16).prop_map(Op::Remove),
        (0u8..16, deadline).prop_map(|(k, d)| Op::SetDeadline(k, d)),
        (0u8..16).prop_map(Op::Get),
        (1u64..10).prop_map(Op::Advance),
        Just(Op::Cycle),
    ]
}

proptest! {
    /// The keyspace against a BTreeMap model that filters expired entries on read.
    #[test]
    fn matches_a_simple_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut ks = Keyspace::new();
        let mut model: BTreeMap<u8, (u32, Option<u64>)> = BTreeMap::new();
        let mut now = 0u64;
        let live = |model: &BTreeMap<u8, (u32, Option<u64>)>, k: u8, now: u64| {
            model.get(&k).filter(|(_, d)| d.is_none_or(|d| d > now)).copied()
        };
        for (step, op) in ops.into_iter().enumerate() {
            let step = step as u32;
            match op {
                Op::Insert(k, d) => {
                    let d = d.map(|d| now + d);
                    ks.insert(&[k], Blob::Int(step.into()), d, now);
                    model.insert(k, (step, d));
                }
                Op::Remove(k) => {
                    let was = live(&model, k, now).is_some();
                    prop_assert_eq!(ks.remove(&[k], now), was);
                    model.remove(&k);
                }
                Op::SetDeadline(k, d) => {
                    let d = d.map(|d| now + d);
                    let was = live(&model, k, now).is_some();
                    prop_assert_eq!(ks.set_deadline(&[k], d, now), was);
                    if was {
                        model.get_mut(&k).unwrap().1 = d;
                    }
                }
                Op::Get(k) => {
                    let expected = live(&model, k, now).map(|(v, _)| Blob::Int(v.into()));
                    prop_assert_eq!(ks.get(&[k], now).cloned(), expected);
                }
                Op::Advance(ms) => now += ms,
                Op::Cycle => {
                    ks.expire_cycle(now, std::time::Duration::from_millis(25));
                }
            }
            ks.check_invariants();
            for k in 0..16u8 {
                let expected = live(&model, k, now).map(|(_, d)| d);
                prop_assert_eq!(ks.deadline(&[k], now), expected);
            }
        }
    }
}

#[test]
fn a_slot_of_the_families_values_stays_one_cache_line() {
    // The snapshot stamp lives in what was padding: a key costs what it did before.
    assert_eq!(std::mem::size_of::<Slot<crate::families::Stored>>(), 64);
}

#[derive(Debug, Clone)]
enum Change {
    Insert(u8, Option<u64>),
    Remove(u8),
    SetDeadline(u8, Option<u64>),
    Advance(u64),
    Cycle,
    Step(usize),
}

fn change() -> impl Strategy<Value = Change> {
    let deadline = proptest::option::of(1u64..80);
    prop_oneof![
        3 => (any::<u8>(), deadline.clone()).prop_map(|(k, d)| Change::Insert(k, d)),
        1 => any::<u8>().prop_map(Change::Remove),
        1 => (any::<u8>(), deadline).prop_map(|(k, d)| Change::SetDeadline(k, d)),
        1 => (1u64..10).prop_map(Change::Advance),
        1 => Just(Change::Cycle),
        2 => (1usize..64).prop_map(Change::Step),
    ]
}

type Row = (Vec<u8>, Vec<u8>, Option<u64>);

fn rows(ks: &Keyspace<Blob>) -> Vec<Row> {
    let mut rows: Vec<Row> = ks
        .entries()
        .map(|(k, v, d)| (k.to_vec(), v.as_bytes().unwrap_or_default().to_vec(), d))
        .collect();
    rows.sort();
    rows
}

fn decode_cut(entries: &[u8]) -> Vec<Row> {
    let mut rows: Vec<Row> = crate::data::codec::unframe(entries)
        .iter()
        .map(|entry| {
            let mut input = crate::data::codec::In::new(entry);
            assert_eq!(input.byte().unwrap(), KEY_ENTRY);
            let key = input.bytes().unwrap().to_vec();
            let deadline = input.uint().unwrap();
            assert_eq!(input.byte().unwrap(), 0, "values here are bytes");
            let value = input.bytes().unwrap().to_vec();
            (key, value, (deadline != 0).then_some(deadline))
        })
        .collect();
    rows.sort();
    rows
}

proptest! {
    /// A snapshot taken while the keyspace keeps changing (and growing past resizes)
    /// holds every slot exactly as it was when the cut began, each exactly once.
    #[test]
    fn a_cut_saves_the_keyspace_as_it_was_when_it_began(
        before in proptest::collection::vec(change(), 0..300),
        during in proptest::collection::vec(change(), 0..400),
    ) {
        let mut ks: Keyspace<Blob> = Keyspace::new();
        let mut now = 1u64;
        let mut serial = 0u32;
        let mut run = |ks: &mut Keyspace<Blob>, change: &Change, now: &mut u64| {
            serial += 1;
            match change {
                Change::Insert(k, d) => {
                    let value = Blob::new(format!("v{serial}").as_bytes());
                    ks.insert(&[*k], value, d.map(|d| *now + d), *now);
                }
                Change::Remove(k) => {
                    ks.remove(&[*k], *now);
                }
                Change::SetDeadline(k, d) => {
                    ks.set_deadline(&[*k], d.map(|d| *now + d), *now);
                }
                Change::Advance(by) => *now += by,
                Change::Cycle => {
                    ks.expire_cycle(*now, std::time::Duration::from_millis(25));
                }
                Change::Step(budget) => {
                    ks.cut_step(*budget);
                }
            }
        };
        for change in &before {
            run(&mut ks, change, &mut now);
        }
        let expected = rows(&ks);
        ks.begin_cut();
        let mut saved = bytes::BytesMut::new();
        let mut spare = bytes::BytesMut::new();
        for change in &during {
            run(&mut ks, change, &mut now);
            ks.take_cut_entries(&mut spare);
            saved.extend_from_slice(&spare);
        }
        while !ks.cut_step(16) {}
        ks.take_cut_entries(&mut spare);
        saved.extend_from_slice(&spare);
        ks.end_cut();
        prop_assert_eq!(decode_cut(&saved), expected);
        ks.check_invariants();
    }
}
