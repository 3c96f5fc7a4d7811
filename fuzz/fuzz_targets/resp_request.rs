//! Fuzzes the RESP request reader (multibulk and inline) and the text command parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_protocol::fuzzing::resp_request(data));
