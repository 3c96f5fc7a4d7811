//! The handshake state machine under arbitrary input, for cargo-fuzz and for proptest: a
//! stream of frames drives one connection's session against a registry it may also
//! change, and what the session lets through must always be what its user may run.

use bytes::BytesMut;
use tessera_protocol::commands::access::is_connection;
use tessera_protocol::{AdminCommand, Command, FrameDecoder};

use super::{is_session_command, Acl, Session};
use crate::net::access;

/// Decodes `data` as request frames and runs each through a session of a node with a
/// password and two users, as a connection would. Never panics; asserts that a request
/// the session admits is one its current user may run, and that an unauthenticated
/// session admits nothing.
pub fn handshake(data: &[u8]) {
    let lines = [
        "reader on >r ~cache:* +@read".to_string(),
        "ops on >o allkeys +@all -@dangerous".to_string(),
    ];
    let Ok(acl) = Acl::from_settings(Some("root"), &lines) else {
        unreachable!("the fixed users are valid");
    };
    let mut session = Session::start(&acl);
    let decoder = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let Ok(command) = Command::decode(frame.body) else {
            continue;
        };
        match &command {
            Command::Admin(AdminCommand::Hello {
                auth: Some(auth), ..
            }) => {
                let _ = session.authenticate(&acl, Some(&auth.username), &auth.password);
            }
            Command::Admin(AdminCommand::Hello { .. }) => {}
            other if is_session_command(other) => {
                let _ = access::answer(&acl, &mut session, other);
            }
            other => {
                if session.check(&acl, other).is_ok() {
                    let name = session
                        .username()
                        .unwrap_or_else(|| panic!("an unauthenticated session admitted {other:?}"));
                    let user = acl.user(name).filter(|u| u.enabled);
                    let user = user.unwrap_or_else(|| panic!("admitted for missing user {name}"));
                    assert!(
                        is_connection(other.spec()) || user.may_run(other.table_index()),
                        "{name} ran {other:?} without the right"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use tessera_protocol::encode_request;

    fn frames(lines: &[String]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for (id, line) in lines.iter().enumerate() {
            let words: Vec<Bytes> = line
                .split(' ')
                .map(|w| Bytes::from(w.to_string()))
                .collect();
            if let Ok(command) = Command::parse_words(&words) {
                encode_request(&mut out, id as u32 + 1, &command);
            }
        }
        out.to_vec()
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("AUTH root".to_string()),
            Just("AUTH wrong".to_string()),
            Just("AUTH reader r".to_string()),
            Just("AUTH ops o".to_string()),
            Just("HELLO 2 AUTH ops o".to_string()),
            Just("HELLO 2 AUTH reader nope".to_string()),
            Just("GET cache:1".to_string()),
            Just("GET user:1".to_string()),
            Just("SET cache:1 v".to_string()),
            Just("FLUSHALL".to_string()),
            Just("MGET cache:1 user:1".to_string()),
            Just("ACL.SETUSER reader -get".to_string()),
            Just("ACL.SETUSER reader off".to_string()),
            Just("ACL.SETUSER ops +@dangerous".to_string()),
            Just("ACL.SETUSER newbie on >n +get ~*".to_string()),
            Just("AUTH newbie n".to_string()),
            Just("ACL.DELUSER reader ops".to_string()),
            Just("ACL.LIST".to_string()),
            Just("ACL.WHOAMI".to_string()),
            Just("PING".to_string()),
        ]
    }

    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/handshake");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            handshake(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 50, "{replayed} inputs in {}", dir.display());
    }

    proptest! {
        #[test]
        fn any_sequence_of_handshake_requests_keeps_the_rules(lines in proptest::collection::vec(line(), 0..24)) {
            handshake(&frames(&lines));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            handshake(&data);
        }
    }
}
