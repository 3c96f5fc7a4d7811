//! Fuzzes request bodies and redis-cli style words.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_protocol::fuzzing::command_parser(data));
