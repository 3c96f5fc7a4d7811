//! Fuzzes the authentication and ACL state of one connection.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tessera_server::acl::fuzzing::handshake(data));
