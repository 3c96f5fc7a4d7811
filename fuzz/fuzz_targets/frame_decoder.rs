//! Fuzzes framing and both body decoders.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_protocol::fuzzing::frame_decoder(data));
