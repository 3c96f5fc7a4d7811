//! The byte-level examples in docs/PROTOCOL.md §11, checked against the codec.

use bytes::{Bytes, BytesMut};
use tessera_protocol::{
    encode_request, encode_response, Command, ErrorReply, SetArgs, SetCondition, SetExpiry, Value,
};
use tessera_protocol::{AdminCommand, KeyCommand};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn request(id: u32, command: &Command) -> String {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, id, command);
    hex(&buf)
}

fn response(id: u32, value: &Value) -> String {
    let mut buf = BytesMut::new();
    encode_response(&mut buf, id, value);
    hex(&buf)
}

#[test]
fn documented_bytes_match_the_codec() {
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    assert_eq!(
        request(
            1,
            &Command::Admin(AdminCommand::Hello {
                version: 2,
                shard: None,
                auth: None,
            })
        ),
        "0a 00 00 00 01 00 00 00 02 00 02 00 00 00"
    );
    let set = Command::Keys(KeyCommand::Set(SetArgs {
        key: b("k"),
        value: b("v"),
        condition: SetCondition::IfAbsent,
        expiry: SetExpiry::In(10_000),
        get: false,
    }));
    assert_eq!(
        request(2, &set),
        "0d 00 00 00 02 00 00 00 11 00 01 6b 01 76 11 90 4e"
    );
    assert_eq!(response(2, &Value::Ok), "05 00 00 00 02 00 00 00 01");
    assert_eq!(
        request(3, &Command::Keys(KeyCommand::Get(b("k")))),
        "08 00 00 00 03 00 00 00 10 00 01 6b"
    );
    assert_eq!(
        response(3, &Value::Bytes(b("v"))),
        "07 00 00 00 03 00 00 00 03 01 76"
    );
    assert_eq!(response(3, &Value::Nil), "05 00 00 00 03 00 00 00 00");
    assert_eq!(
        request(4, &Command::Keys(KeyCommand::MGet(vec![b("a"), b("b")]))),
        "0b 00 00 00 04 00 00 00 1b 00 02 01 61 01 62"
    );
    assert_eq!(
        response(4, &Value::Array(vec![Value::Bytes(b("1")), Value::Nil])),
        "0a 00 00 00 04 00 00 00 05 02 03 01 31 00"
    );
    let error = Value::Error(ErrorReply {
        code: 3,
        message: "bad".into(),
    });
    assert_eq!(
        response(5, &error),
        "0b 00 00 00 05 00 00 00 0f 03 00 03 62 61 64"
    );
}
