//! Writes replies as RESP2 or RESP3, with the error prefixes and texts Redis clients match.

use bytes::{BufMut, BytesMut};

use crate::{ErrorCode, ErrorReply, Value};

/// Which RESP a connection speaks: 2 until it sends `HELLO 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RespVersion {
    /// Arrays, bulk and simple strings, integers, errors; maps flattened, nulls as `$-1`.
    #[default]
    Resp2,
    /// Adds maps, doubles, booleans, nulls and pushes.
    Resp3,
}

/// Appends `value` as a reply.
pub fn encode(buf: &mut BytesMut, value: &Value, version: RespVersion) {
    match value {
        Value::Nil => match version {
            RespVersion::Resp2 => buf.put_slice(b"$-1\r\n"),
            RespVersion::Resp3 => buf.put_slice(b"_\r\n"),
        },
        Value::Ok => buf.put_slice(b"+OK\r\n"),
        Value::Int(n) => line(buf, b':', n),
        Value::Bytes(bytes) => bulk(buf, bytes),
        Value::Text(text) => bulk(buf, text.as_bytes()),
        Value::Array(items) => {
            line(buf, b'*', items.len());
            for item in items {
                encode(buf, item, version);
            }
        }
        Value::Map(pairs) => {
            match version {
                RespVersion::Resp2 => line(buf, b'*', pairs.len() * 2),
                RespVersion::Resp3 => line(buf, b'%', pairs.len()),
            }
            for (key, value) in pairs {
                encode(buf, key, version);
                encode(buf, value, version);
            }
        }
        Value::Float(x) => match version {
            RespVersion::Resp2 => bulk(buf, format_double(*x).as_bytes()),
            RespVersion::Resp3 => line(buf, b',', format_double(*x)),
        },
        Value::Bool(b) => match version {
            RespVersion::Resp2 => line(buf, b':', u8::from(*b)),
            RespVersion::Resp3 => buf.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        },
        Value::Error(error) => {
            buf.put_u8(b'-');
            buf.put_slice(error_line(error).as_bytes());
            buf.put_slice(b"\r\n");
        }
    }
}

/// Appends `value` as a message the client did not ask for: a RESP3 push, or under RESP2
/// a plain array (which RESP2 clients read only while subscribed).
pub fn encode_push(buf: &mut BytesMut, value: &Value, version: RespVersion) {
    match (version, value) {
        (RespVersion::Resp3, Value::Array(items)) => {
            line(buf, b'>', items.len());
            for item in items {
                encode(buf, item, version);
            }
        }
        _ => encode(buf, value, version),
    }
}

/// Appends a simple string, `+text`: for the few replies Redis sends as status, like PONG.
pub fn encode_status(buf: &mut BytesMut, text: &str) {
    line(buf, b'+', text);
}

/// Appends `bytes` as a bulk string, without building a `Value`.
pub fn bulk(buf: &mut BytesMut, bytes: &[u8]) {
    line(buf, b'$', bytes.len());
    buf.put_slice(bytes);
    buf.put_slice(b"\r\n");
}

/// Appends an array of bulk strings, without building `Value`s.
pub fn bulk_array(buf: &mut BytesMut, items: &[&[u8]]) {
    line(buf, b'*', items.len());
    for item in items {
        bulk(buf, item);
    }
}

fn line(buf: &mut BytesMut, kind: u8, text: impl std::fmt::Display) {
    use std::fmt::Write;
    buf.put_u8(kind);
    let _ = write!(buf, "{text}");
    buf.put_slice(b"\r\n");
}

/// A double as Redis 7.0 prints one (`%.17g`: 17 significant digits, trailing zeros
/// dropped, an exponent past 16 or below -4), `inf`, `-inf` and `nan`.
pub fn format_double(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{x:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |text: &str| -> String {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text.to_string()
        }
    };
    if (-4..17).contains(&exponent) {
        trim(&format!("{x:.*}", (16 - exponent) as usize))
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.abs())
    }
}

/// The text after `-` for an error reply: Redis's prefix and, where Redis's clients or
/// tests match it, Redis's words.
pub fn error_line(error: &ErrorReply) -> String {
    let message = error.message.as_str();
    let Some(code) = error.known_code() else {
        return format!("ERR {message}");
    };
    match code {
        // Redis's own prefix for an EXEC refused for earlier errors.
        ErrorCode::Syntax if message.starts_with("EXECABORT ") => message.into(),
        ErrorCode::WrongType => {
            "WRONGTYPE Operation against a key holding the wrong kind of value".into()
        }
        ErrorCode::NotInteger if message.contains("overflow") => {
            "ERR increment or decrement would overflow".into()
        }
        ErrorCode::NotInteger => "ERR value is not an integer or out of range".into(),
        // Ours are Redis's words: `value is not a valid float`, `weight value is not a
        // float`, `resulting score is not a number (NaN)`.
        ErrorCode::NotFloat => format!("ERR {message}"),
        ErrorCode::Oom => "OOM command not allowed when used memory > 'maxmemory'.".into(),
        ErrorCode::NoAuth => "NOAUTH Authentication required.".into(),
        ErrorCode::WrongPass => {
            "WRONGPASS invalid username-password pair or user is disabled.".into()
        }
        ErrorCode::NotFound if message == "no such key" => "ERR no such key".into(),
        ErrorCode::MaxClients => "ERR max number of clients reached".into(),
        ErrorCode::CrossShard | ErrorCode::CrossNode => {
            "CROSSSLOT Keys in request don't hash to the same slot".into()
        }
        ErrorCode::Moved => {
            // Ours says `slot host:port epoch [resp-host:port]`; Redis clients read `slot
            // host:port` and must be sent to the owner's RESP port.
            let words: Vec<&str> = message.split(' ').collect();
            let slot = words.first().copied().unwrap_or("");
            let addr = words.get(3).or(words.get(1)).copied().unwrap_or("");
            format!("MOVED {slot} {addr}")
        }
        ErrorCode::TryAgain => format!("TRYAGAIN {message}"),
        ErrorCode::ClusterDown => format!("CLUSTERDOWN {message}"),
        ErrorCode::UnsupportedVersion => "NOPROTO unsupported protocol version".into(),
        ErrorCode::Protocol => format!("ERR Protocol error: {message}"),
        ErrorCode::Syntax
        | ErrorCode::UnknownCommand
        | ErrorCode::InvalidExpire
        | ErrorCode::ValueTooLarge
        | ErrorCode::Internal
        | ErrorCode::ShuttingDown => format!("ERR {message}"),
        other => format!("{} {message}", other.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn written(value: &Value, version: RespVersion) -> String {
        let mut buf = BytesMut::new();
        encode(&mut buf, value, version);
        String::from_utf8(buf.to_vec()).unwrap()
    }

    #[test]
    fn doubles_print_as_redis_7_0_prints_them() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(-2.5e-5), "-2.5000000000000001e-05");
        assert_eq!(format_double(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(format_double(1e16), "10000000000000000");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn maps_nulls_doubles_and_booleans_take_each_versions_form() {
        let map = Value::Map(vec![(
            Value::text("f"),
            Value::Bytes(Bytes::from_static(b"v")),
        )]);
        assert_eq!(
            written(&map, RespVersion::Resp2),
            "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(
            written(&map, RespVersion::Resp3),
            "%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(written(&Value::Nil, RespVersion::Resp2), "$-1\r\n");
        assert_eq!(written(&Value::Nil, RespVersion::Resp3), "_\r\n");
        assert_eq!(
            written(&Value::Float(1.5), RespVersion::Resp2),
            "$3\r\n1.5\r\n"
        );
        assert_eq!(written(&Value::Float(3.0), RespVersion::Resp3), ",3\r\n");
        assert_eq!(
            written(&Value::Float(f64::NEG_INFINITY), RespVersion::Resp3),
            ",-inf\r\n"
        );
        assert_eq!(written(&Value::Bool(true), RespVersion::Resp2), ":1\r\n");
        assert_eq!(written(&Value::Bool(false), RespVersion::Resp3), "#f\r\n");
        assert_eq!(written(&Value::Ok, RespVersion::Resp2), "+OK\r\n");
        assert_eq!(written(&Value::Int(-7), RespVersion::Resp2), ":-7\r\n");
    }

    #[test]
    fn errors_carry_redis_prefixes_and_texts() {
        let line = |code, message: &str| error_line(&ErrorReply::new(code, message));
        assert_eq!(
            line(ErrorCode::WrongType, "key holds a hash"),
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert_eq!(
            line(ErrorCode::NotInteger, "not an integer"),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            line(ErrorCode::Moved, "1234 10.0.0.2:7001 5"),
            "MOVED 1234 10.0.0.2:7001"
        );
        assert_eq!(
            line(ErrorCode::Moved, "1234 10.0.0.2:7001 5 10.0.0.2:6379"),
            "MOVED 1234 10.0.0.2:6379"
        );
        assert_eq!(line(ErrorCode::Conflict, "taken"), "CONFLICT taken");
        assert_eq!(
            line(ErrorCode::CrossShard, "keys on shards 1 and 2"),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
        assert_eq!(
            written(&Value::error(ErrorCode::NoAuth, "x"), RespVersion::Resp2),
            "-NOAUTH Authentication required.\r\n"
        );
    }

    #[test]
    fn pushes_are_push_frames_only_in_resp3() {
        let push = Value::Array(vec![Value::text("message"), Value::Int(1)]);
        let mut buf = BytesMut::new();
        encode_push(&mut buf, &push, RespVersion::Resp3);
        assert_eq!(&buf[..], b">2\r\n$7\r\nmessage\r\n:1\r\n");
        buf.clear();
        encode_push(&mut buf, &push, RespVersion::Resp2);
        assert_eq!(&buf[..], b"*2\r\n$7\r\nmessage\r\n:1\r\n");
    }
}
