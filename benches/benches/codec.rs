//! Criterion benches of the codec: encoding and decoding request and response frames.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tessera_protocol::KeyCommand;
use tessera_protocol::{
    encode_request, encode_response, Command, FrameDecoder, SetArgs, SetExpiry, Value,
};

fn golden_set() -> Command {
    Command::Keys(KeyCommand::Set(SetArgs {
        key: Bytes::from_static(b"session:5f1c2a"),
        value: Bytes::from(vec![b'x'; 64]),
        condition: Default::default(),
        expiry: SetExpiry::In(30_000),
        get: false,
    }))
}

fn frames(c: &mut Criterion) {
    let command = golden_set();
    let mut one = BytesMut::new();
    encode_request(&mut one, 1, &command);
    let frame_len = one.len();

    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(frame_len as u64));
    group.bench_function("encode_set", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            encode_request(&mut buf, 7, black_box(&command));
        })
    });
    group.bench_function("decode_set", |b| {
        let wire = one.clone().freeze();
        let decoder = FrameDecoder::default();
        b.iter(|| {
            let mut buf = BytesMut::from(&wire[..]);
            let frame = decoder.decode(&mut buf).unwrap().unwrap();
            black_box(Command::decode(frame.body).unwrap());
        })
    });
    group.finish();

    let batch: Vec<u8> = (0..16).flat_map(|_| one.to_vec()).collect();
    let mut group = c.benchmark_group("pipeline16");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("decode_16_sets", |b| {
        let decoder = FrameDecoder::default();
        b.iter(|| {
            let mut buf = BytesMut::from(&batch[..]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                black_box(Command::decode(frame.body).unwrap());
            }
        })
    });
    group.finish();

    let reply = Value::Bytes(Bytes::from(vec![b'x'; 64]));
    let mut group = c.benchmark_group("response");
    group.bench_function("encode_get_reply", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            encode_response(&mut buf, 7, black_box(&reply));
        })
    });
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
