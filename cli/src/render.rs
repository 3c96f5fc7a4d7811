//! tessera-cli's pieces: splitting a typed line into words and printing replies for people
//! or as JSON.

use std::fmt::Write;

use bytes::Bytes;
use tessera_protocol::{ErrorReply, Value};

/// Splits a prompt line into words, honouring "double" and 'single' quotes and, inside
/// double quotes, the escapes \n \r \t \\ \" and \xHH.
///
/// # Errors
/// A message for an unclosed quote or a bad escape.
pub fn split_line(line: &str) -> Result<Vec<Bytes>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = Vec::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == first {
                    closed = true;
                    break;
                }
                if c == '\\' && first == '"' {
                    match chars.next() {
                        Some('n') => word.push(b'\n'),
                        Some('r') => word.push(b'\r'),
                        Some('t') => word.push(b'\t'),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            let byte = u8::from_str_radix(&hex, 16)
                                .map_err(|_| format!("bad escape \\x{hex}"))?;
                            word.push(byte);
                        }
                        Some(other) => {
                            let mut utf8 = [0u8; 4];
                            word.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
                        }
                        None => return Err("unfinished escape".into()),
                    }
                } else {
                    let mut utf8 = [0u8; 4];
                    word.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
            if !closed {
                return Err("unbalanced quotes".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                let mut utf8 = [0u8; 4];
                word.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                chars.next();
            }
        }
        words.push(Bytes::from(word));
    }
}

/// Renders a reply the way redis-cli does at a terminal: `(integer) 1`, quoted strings,
/// numbered list items, `(nil)`, `(error) ...`.
pub fn render_human(value: &Value) -> String {
    let mut out = String::new();
    human(value, 0, &mut out);
    out
}

fn human(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Nil => out.push_str("(nil)"),
        Value::Ok => out.push_str("OK"),
        Value::Int(n) => {
            let _ = write!(out, "(integer) {n}");
        }
        Value::Float(x) => {
            let _ = write!(out, "(double) {x}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "({b})");
        }
        Value::Bytes(b) => quote(b, out),
        Value::Text(t) => out.push_str(t),
        Value::Error(e) => {
            let _ = write!(out, "(error) {e}");
        }
        Value::Array(items) if items.is_empty() => out.push_str("(empty array)"),
        Value::Array(items) => {
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                }
                let _ = write!(out, "{:>width$}) ", i + 1);
                human(item, indent + width + 2, out);
            }
        }
        Value::Map(pairs) if pairs.is_empty() => out.push_str("(empty map)"),
        Value::Map(pairs) => {
            for (i, (key, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                }
                let key = match key {
                    Value::Text(t) => t.clone(),
                    other => render_human(other),
                };
                out.push_str(&key);
                if matches!(item, Value::Map(p) if !p.is_empty())
                    || matches!(item, Value::Array(a) if !a.is_empty())
                {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent + 2));
                    human(item, indent + 2, out);
                } else {
                    out.push_str(": ");
                    human(item, indent + 2, out);
                }
            }
        }
    }
}

fn quote(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

/// Renders a reply as bare text for pipes and scripts: values unquoted, one per line.
pub fn render_raw(value: &Value) -> String {
    match value {
        Value::Nil => String::new(),
        Value::Ok => "OK".into(),
        Value::Int(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Text(t) => t.clone(),
        Value::Error(e) => format!("(error) {e}"),
        Value::Array(items) => items.iter().map(render_raw).collect::<Vec<_>>().join("\n"),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}: {}", render_raw(k), render_raw(v)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Converts a reply to JSON: bytes become strings when UTF-8 and `{"hex": ...}` otherwise,
/// maps become objects, errors become `{"error": {"code", "name", "message"}}`.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::{json, Value as Json};
    match value {
        Value::Nil => Json::Null,
        Value::Ok => json!("OK"),
        Value::Int(n) => json!(n),
        Value::Float(x) => json!(x),
        Value::Bool(b) => json!(b),
        Value::Text(t) => json!(t),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(text) => json!(text),
            Err(_) => json!({ "hex": b.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
        },
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(t) => t.clone(),
                        other => render_raw(other),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Error(e) => error_json(e),
    }
}

/// The JSON form of an error reply.
pub fn error_json(error: &ErrorReply) -> serde_json::Value {
    serde_json::json!({
        "error": {
            "code": error.code,
            "name": error.known_code().map(|c| c.name()),
            "message": error.message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::ErrorCode;

    #[test]
    fn splits_quotes_and_escapes() {
        let words = split_line(r#"set "a key" 'it''s' "\x41\n""#).unwrap();
        let words: Vec<&[u8]> = words.iter().map(|w| &w[..]).collect();
        assert_eq!(words, vec![&b"set"[..], b"a key", b"it", b"s", b"A\n"]);
        assert!(split_line("get \"open").is_err());
        assert!(split_line("   ").unwrap().is_empty());
    }

    #[test]
    fn human_output_matches_redis_cli() {
        assert_eq!(render_human(&Value::Int(3)), "(integer) 3");
        assert_eq!(render_human(&Value::Nil), "(nil)");
        assert_eq!(
            render_human(&Value::Bytes(Bytes::from_static(b"a\"b\x01"))),
            r#""a\"b\x01""#
        );
        assert_eq!(
            render_human(&Value::Array(vec![
                Value::Bytes(Bytes::from_static(b"x")),
                Value::Nil
            ])),
            "1) \"x\"\n2) (nil)"
        );
        assert_eq!(
            render_human(&Value::error(ErrorCode::WrongType, "bad")),
            "(error) WRONGTYPE bad"
        );
    }

    #[test]
    fn json_output_is_typed() {
        let value = Value::Map(vec![
            (Value::text("n"), Value::Int(1)),
            (Value::text("b"), Value::Bytes(Bytes::from_static(&[0xff]))),
            (Value::text("e"), Value::error(ErrorCode::Syntax, "x")),
        ]);
        assert_eq!(
            to_json(&value),
            serde_json::json!({"n": 1, "b": {"hex": "ff"}, "e": {"error": {"code": 3, "name": "SYNTAX", "message": "x"}}})
        );
    }
}
