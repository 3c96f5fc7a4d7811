//! Replays every file of the fuzz corpus through the fuzz entry points on stable Rust.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} fails", path.display());
        count += 1;
    }
    count
}

#[test]
fn frame_decoder_corpus_replays_cleanly() {
    assert!(replay("frame_decoder", tessera_protocol::fuzzing::frame_decoder) >= 10);
}

#[test]
fn command_parser_corpus_replays_cleanly() {
    assert!(replay("command_parser", tessera_protocol::fuzzing::command_parser) >= 10);
}

#[test]
fn resp_request_corpus_replays_cleanly() {
    assert!(replay("resp_request", tessera_protocol::fuzzing::resp_request) >= 10);
}
