//! Where Redis's reply to a command differs in shape from ours: the change applied to our
//! reply before it is written.

use tessera_protocol::resp::RespVersion;
use tessera_protocol::Value;

/// How one request's reply is reshaped for a Redis client.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// SETNX: 1 if SET NX set it, 0 if not.
    SetIfAbsent,
    /// HMSET, SETEX: OK whatever count the write answered.
    Ok,
    /// ZRANGE WITHSCORES and ZPOPMIN/ZPOPMAX with a count: pairs flattened under RESP2.
    FlatPairs,
    /// ZPOPMIN/ZPOPMAX without a count: one flat `[member, score]`, or an empty array.
    OnePair,
    /// INFO: Redis's text, `# Section` headers and `field:value` lines.
    InfoText,
    /// EXEC: each queued command's reply reshaped as that command's is.
    Each(Box<[Option<Shape>]>),
    /// SUBSCRIBE and its kin: these frames instead of our count, each on its own (a push
    /// under RESP3), as Redis confirms each channel.
    Frames(Box<[Value]>),
    /// OBJECT REFCOUNT answered by EXISTS: every value has one owner, so 1, or nil for a
    /// missing key.
    OneOrNil,
    /// A reply that is an array when there is one, so its nil is RESP2's null array
    /// (`*-1`): LPOP with a count, the blocking pops.
    NilArray,
}

impl Shape {
    /// Whether a nil reply is written as RESP2's null array rather than a null string.
    pub fn nil_is_array(&self) -> bool {
        matches!(self, Shape::NilArray | Shape::Each(_))
    }

    /// Our reply as Redis gives it; errors pass as they are.
    pub fn apply(&self, value: &Value, version: RespVersion) -> Value {
        if matches!(value, Value::Error(_)) {
            return value.clone();
        }
        match self {
            Shape::SetIfAbsent => Value::Int(i64::from(!matches!(value, Value::Nil))),
            Shape::Ok => Value::Ok,
            Shape::NilArray | Shape::Frames(_) => value.clone(),
            Shape::OneOrNil => match value {
                Value::Int(0) => Value::Nil,
                _ => Value::Int(1),
            },
            Shape::FlatPairs if version == RespVersion::Resp2 => flatten(value),
            Shape::FlatPairs => value.clone(),
            Shape::OnePair => flatten(value),
            Shape::InfoText => Value::Bytes(info_text(value).into()),
            Shape::Each(shapes) => match value {
                Value::Array(replies) => Value::Array(
                    replies
                        .iter()
                        .zip(shapes.iter())
                        .map(|(reply, shape)| match shape {
                            Some(shape) => shape.apply(reply, version),
                            None => reply.clone(),
                        })
                        .collect(),
                ),
                // An EXEC whose watched keys changed answers nil.
                other => other.clone(),
            },
        }
    }
}

fn flatten(value: &Value) -> Value {
    let Value::Array(pairs) = value else {
        return value.clone();
    };
    let mut flat = Vec::with_capacity(pairs.len() * 2);
    for pair in pairs {
        match pair {
            Value::Array(both) => flat.extend(both.iter().cloned()),
            other => flat.push(other.clone()),
        }
    }
    Value::Array(flat)
}

/// Our INFO map as Redis's text: each map inside it a section, every other field a line of
/// the first section (`server`), nested maps joined with `_` as Redis names its fields.
fn info_text(value: &Value) -> String {
    let Value::Map(entries) = value else {
        return String::new();
    };
    let mut top = String::from("# Server\r\n");
    let mut sections = String::new();
    for (key, value) in entries {
        let name = plain(key);
        match value {
            Value::Map(fields) => {
                sections.push_str(&format!("\r\n# {}\r\n", title(&name)));
                for (field, value) in fields {
                    lines(&mut sections, &plain(field), value);
                }
            }
            Value::Array(buckets) if name == "latency_buckets" => {
                sections.push_str("\r\n# Latencystats\r\n");
                sections.push_str(&bucket_line(buckets));
            }
            other => lines(&mut top, &name, other),
        }
    }
    top + &sections
}

/// INFO's cumulative latency buckets as one line, in the `key=value,...` form Redis's
/// latency stats use: `latency_buckets_usec:le_10=3,le_25=9,...,all=12`.
fn bucket_line(buckets: &[Value]) -> String {
    let fields: Vec<String> = buckets
        .iter()
        .filter_map(|bucket| match bucket {
            Value::Array(pair) => match &pair[..] {
                [Value::Int(-1), Value::Int(count)] => Some(format!("all={count}")),
                [Value::Int(bound), Value::Int(count)] => Some(format!("le_{bound}={count}")),
                _ => None,
            },
            _ => None,
        })
        .collect();
    format!("latency_buckets_usec:{}\r\n", fields.join(","))
}

fn lines(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Map(fields) => {
            for (field, value) in fields {
                lines(out, &format!("{name}_{}", plain(field)), value);
            }
        }
        Value::Array(items) => {
            for (at, item) in items.iter().enumerate() {
                lines(out, &format!("{name}{at}"), item);
            }
        }
        other => out.push_str(&format!("{name}:{}\r\n", plain(other))),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::Int(n) => n.to_string(),
        Value::Float(x) => tessera_protocol::resp::reply::format_double(*x),
        Value::Bool(b) => u8::from(*b).to_string(),
        Value::Nil => String::new(),
        Value::Ok => "ok".into(),
        Value::Error(error) => error.message.clone(),
        Value::Array(_) | Value::Map(_) => String::new(),
    }
}

fn title(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or(String::new(), |first| {
        first.to_uppercase().collect::<String>() + chars.as_str()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn pair(member: &'static str, score: f64) -> Value {
        Value::Array(vec![
            Value::Bytes(Bytes::from_static(member.as_bytes())),
            Value::Float(score),
        ])
    }

    #[test]
    fn scored_pairs_flatten_under_resp2_only() {
        let pairs = Value::Array(vec![pair("a", 1.0), pair("b", 2.0)]);
        let Value::Array(flat) = Shape::FlatPairs.apply(&pairs, RespVersion::Resp2) else {
            panic!()
        };
        assert_eq!(flat.len(), 4);
        assert_eq!(Shape::FlatPairs.apply(&pairs, RespVersion::Resp3), pairs);
        let one = Value::Array(vec![pair("a", 1.0)]);
        assert_eq!(
            Shape::OnePair.apply(&one, RespVersion::Resp3),
            pair("a", 1.0)
        );
    }

    #[test]
    fn info_reads_as_redis_sections() {
        let info = Value::Map(vec![
            (Value::text("version"), Value::text("0.1.0")),
            (
                Value::text("memory"),
                Value::Map(vec![(Value::text("used_memory"), Value::Int(1024))]),
            ),
            (
                Value::text("latency_buckets"),
                Value::Array(vec![
                    Value::Array(vec![Value::Int(10), Value::Int(3)]),
                    Value::Array(vec![Value::Int(-1), Value::Int(5)]),
                ]),
            ),
        ]);
        let Value::Bytes(text) = Shape::InfoText.apply(&info, RespVersion::Resp2) else {
            panic!()
        };
        assert_eq!(
            &text[..],
            b"# Server\r\nversion:0.1.0\r\n\r\n# Memory\r\nused_memory:1024\r\n\r\n# Latencystats\r\nlatency_buckets_usec:le_10=3,all=5\r\n"
        );
        assert_eq!(
            Shape::SetIfAbsent.apply(&Value::Nil, RespVersion::Resp2),
            Value::Int(0)
        );
        assert_eq!(
            Shape::SetIfAbsent.apply(&Value::Ok, RespVersion::Resp2),
            Value::Int(1)
        );
    }
}
