//! Redis's commands in terms of ours: arity checked as Redis checks it, names Redis has
//! and we do not (INCR, SETNX, HMSET, ...) rewritten, and the shape of the reply noted
//! where Redis's differs.

use std::borrow::Cow;

use tessera_protocol::commands::{CommandSpec, COMMANDS};
use tessera_protocol::{ErrorCode, Value};

use super::shape::Shape;

/// What a Redis request becomes.
#[derive(Debug, PartialEq)]
pub enum Translated<'a> {
    /// These words of ours, and how to reshape the reply.
    Native {
        /// The command as our text parser reads it: most are Redis's words as they came.
        words: Cow<'a, [&'a [u8]]>,
        /// Redis's reply shape, where it is not ours.
        shape: Option<Shape>,
    },
    /// Refused before it ran, with Redis's error.
    Refused(Value),
}

/// Redis's arity for the commands it shares with us: `n` exactly n words with the name,
/// `-n` at least n. Commands of ours that Redis lacks are checked by our own parser.
const ARITY: &[(&str, i32)] = &[
    ("GET", 2),
    ("SET", -3),
    ("SETNX", 3),
    ("SETEX", 4),
    ("PSETEX", 4),
    ("GETSET", 3),
    ("DEL", -2),
    ("UNLINK", -2),
    ("EXISTS", -2),
    ("EXPIRE", -3),
    ("PEXPIRE", -3),
    ("TTL", 2),
    ("PTTL", 2),
    ("PERSIST", 2),
    ("INCR", 2),
    ("DECR", 2),
    ("INCRBY", 3),
    ("DECRBY", 3),
    ("MGET", -2),
    ("MSET", -3),
    ("MSETNX", -3),
    ("APPEND", 3),
    ("STRLEN", 2),
    ("GETRANGE", 4),
    ("SUBSTR", 4),
    ("SETRANGE", 4),
    ("GETDEL", 2),
    ("GETEX", -2),
    ("INCRBYFLOAT", 3),
    ("EXPIREAT", -3),
    ("PEXPIREAT", -3),
    ("EXPIRETIME", 2),
    ("PEXPIRETIME", 2),
    ("SETBIT", 4),
    ("GETBIT", 3),
    ("DBSIZE", 1),
    ("FLUSHALL", -1),
    ("FLUSHDB", -1),
    ("INFO", -1),
    ("HSET", -4),
    ("HMSET", -4),
    ("HSETNX", 4),
    ("HGET", 3),
    ("HMGET", -3),
    ("HDEL", -3),
    ("HGETALL", 2),
    ("HKEYS", 2),
    ("HVALS", 2),
    ("HLEN", 2),
    ("HEXISTS", 3),
    ("HINCRBY", 4),
    ("HINCRBYFLOAT", 4),
    ("HSTRLEN", 3),
    ("HRANDFIELD", -2),
    ("ZADD", -4),
    ("ZINCRBY", 4),
    ("ZREM", -3),
    ("ZSCORE", 3),
    ("ZMSCORE", -3),
    ("ZRANK", -3),
    ("ZREVRANK", -3),
    ("ZRANGE", -4),
    ("ZREVRANGE", -4),
    ("ZRANDMEMBER", -2),
    ("ZUNION", -3),
    ("ZINTER", -3),
    ("ZDIFF", -3),
    ("ZUNIONSTORE", -4),
    ("ZINTERSTORE", -4),
    ("ZDIFFSTORE", -4),
    ("ZINTERCARD", -3),
    ("ZRANGESTORE", -5),
    ("ZRANGEBYSCORE", -4),
    ("ZREVRANGEBYSCORE", -4),
    ("ZCARD", 2),
    ("ZCOUNT", 4),
    ("ZPOPMIN", -2),
    ("ZPOPMAX", -2),
    ("ZREMRANGEBYSCORE", 4),
    ("ZREMRANGEBYRANK", 4),
    ("LPUSH", -3),
    ("RPUSH", -3),
    ("LPUSHX", -3),
    ("RPUSHX", -3),
    ("LPOP", -2),
    ("RPOP", -2),
    ("LLEN", 2),
    ("LRANGE", 4),
    ("LINDEX", 3),
    ("LSET", 4),
    ("LREM", 4),
    ("LTRIM", 4),
    ("LPOS", -3),
    ("LINSERT", 5),
    ("LMOVE", 5),
    ("RPOPLPUSH", 3),
    ("LMPOP", -4),
    ("BLPOP", -3),
    ("BRPOP", -3),
    ("BLMPOP", -5),
    ("BLMOVE", 6),
    ("BRPOPLPUSH", 4),
    ("ZMPOP", -4),
    ("BZPOPMIN", -3),
    ("BZPOPMAX", -3),
    ("BZMPOP", -5),
    ("GEOADD", -5),
    ("GEOPOS", -2),
    ("GEODIST", -4),
    ("GEOHASH", -2),
    ("GEOSEARCH", -7),
    ("GEOSEARCHSTORE", -8),
    ("GEORADIUS", -6),
    ("GEORADIUS_RO", -6),
    ("GEORADIUSBYMEMBER", -5),
    ("GEORADIUSBYMEMBER_RO", -5),
    ("SADD", -3),
    ("SREM", -3),
    ("SMEMBERS", 2),
    ("SISMEMBER", 3),
    ("SMISMEMBER", -3),
    ("SCARD", 2),
    ("SPOP", -2),
    ("SRANDMEMBER", -2),
    ("SMOVE", 4),
    ("SINTER", -2),
    ("SUNION", -2),
    ("SDIFF", -2),
    ("SINTERSTORE", -3),
    ("SUNIONSTORE", -3),
    ("SDIFFSTORE", -3),
    ("SINTERCARD", -3),
    ("SSCAN", -3),
    ("TYPE", 2),
    ("KEYS", 2),
    ("SCAN", -2),
    ("RENAME", 3),
    ("RENAMENX", 3),
    ("CONFIG", -2),
    ("FUNCTION", -2),
    ("WAIT", 3),
    ("READONLY", 1),
    ("CLUSTER", -2),
    ("ASKING", 1),
    ("READWRITE", 1),
    ("PING", -1),
    ("ECHO", 2),
    ("SELECT", 2),
    ("AUTH", -2),
    ("HELLO", -1),
    ("QUIT", -1),
    ("SUBSCRIBE", -2),
    ("UNSUBSCRIBE", -1),
    ("PSUBSCRIBE", -2),
    ("PUNSUBSCRIBE", -1),
    ("PUBLISH", 3),
    ("PUBSUB", -2),
    ("MEMORY", -2),
    ("COPY", -3),
    ("RANDOMKEY", 1),
    ("OBJECT", -2),
    ("MULTI", 1),
    ("EXEC", 1),
    ("DISCARD", 1),
    ("WATCH", -2),
    ("UNWATCH", 1),
    ("TIME", 1),
    ("CLIENT", -2),
    ("COMMAND", -1),
    ("SLOWLOG", -2),
    ("LATENCY", -2),
    ("ACL", -2),
];

/// What the RESP port knows of a command name: Redis's arity, where Redis has the
/// command, and our command of the same name, where we have one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known {
    /// Redis's arity: the count of words with the name, negative for "at least".
    pub arity: Option<i32>,
    /// Our command spelled the same.
    pub ours: Option<&'static CommandSpec>,
}

/// What is known of `name` (upper case): one probe per request answers both Redis's
/// arity and which of our commands it is.
pub fn known(name: &str) -> Known {
    static BY_NAME: std::sync::LazyLock<hashbrown::HashMap<&str, Known>> =
        std::sync::LazyLock::new(|| {
            let mut by_name: hashbrown::HashMap<&str, Known> = COMMANDS
                .iter()
                .map(|spec| {
                    (
                        spec.name,
                        Known {
                            arity: None,
                            ours: Some(spec),
                        },
                    )
                })
                .collect();
            for &(name, arity) in ARITY {
                by_name.entry(name).or_default().arity = Some(arity);
            }
            by_name
        });
    BY_NAME.get(name).copied().unwrap_or_default()
}

/// Redis's arity for `name` (upper case), if Redis has the command.
pub fn arity(name: &str) -> Option<i32> {
    known(name).arity
}

/// Redis's refusal of `args` (`name` upper case) for their count, if Redis has the command
/// and would refuse it.
pub fn arity_refusal(name: &str, args: &[&[u8]]) -> Option<Value> {
    refusal_for(known(name), args)
}

/// Redis's refusal of `args` for their count, if Redis has the command `known` describes
/// and would refuse it.
pub fn refusal_for(known: Known, args: &[&[u8]]) -> Option<Value> {
    let arity = known.arity?;
    let n = args.len() as i32;
    ((arity > 0 && n != arity) || (arity < 0 && n < -arity)).then(|| wrong_arity(args[0]))
}

/// How many commands COMMAND COUNT reports: Redis's we serve.
pub fn count() -> usize {
    ARITY.len()
}

/// Every Redis command we serve, with its arity, for COMMAND.
pub fn all() -> impl Iterator<Item = (&'static str, i32)> {
    ARITY.iter().copied()
}

/// `-ERR wrong number of arguments for 'get' command`.
pub fn wrong_arity(name: &[u8]) -> Value {
    Value::error(
        ErrorCode::Syntax,
        format!(
            "wrong number of arguments for '{}' command",
            String::from_utf8_lossy(name).to_lowercase()
        ),
    )
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as Redis words it.
pub fn unknown(args: &[&[u8]]) -> Value {
    let mut message = format!(
        "unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(args[0])
    );
    for arg in args.iter().skip(1).take(20) {
        message.push_str(&format!("'{}' ", String::from_utf8_lossy(arg)));
    }
    Value::error(ErrorCode::UnknownCommand, message)
}

/// Turns a Redis request (name first, as sent; `name` is it in upper case) whose count
/// `arity_refusal` passed into ours.
pub fn translate<'a>(name: &str, args: &'a [&'a [u8]]) -> Translated<'a> {
    let word = |w: &'static str| w.as_bytes();
    let with = |name: &'static str, rest: &[&'a [u8]], shape| -> Translated<'a> {
        Translated::Native {
            words: std::iter::once(word(name))
                .chain(rest.iter().copied())
                .collect::<Vec<_>>()
                .into(),
            shape,
        }
    };
    let rest = &args[1..];
    match name {
        "INCR" => with("INCRBY", &[rest[0], word("1")], None),
        "DECR" => with("DECRBY", &[rest[0], word("1")], None),
        "SETNX" => with(
            "SET",
            &[rest[0], rest[1], word("NX")],
            Some(Shape::SetIfAbsent),
        ),
        "SETEX" | "PSETEX" => {
            let unit = if name == "SETEX" { "EX" } else { "PX" };
            let words = [rest[0], rest[2], word(unit), rest[1]];
            with("SET", &words, Some(Shape::Ok))
        }
        "GETSET" => with("SET", &[rest[0], rest[1], word("GET")], None),
        "UNLINK" => with("DEL", rest, None),
        "OBJECT" if rest[0].eq_ignore_ascii_case(b"REFCOUNT") && rest.len() == 2 => {
            with("EXISTS", &rest[1..], Some(Shape::OneOrNil))
        }
        // SAMPLES bounds how much of a collection Redis looks at; ours is counted as it
        // changes, so there is nothing to sample.
        "MEMORY" if rest[0].eq_ignore_ascii_case(b"USAGE") && rest.len() >= 2 => {
            with("MEMORY.USAGE", &rest[1..2], None)
        }
        "SUBSTR" => with("GETRANGE", rest, None),
        "SLOWLOG" | "LATENCY" => diagnostics(name, rest),
        "ACL" => acl(rest),
        "RPOPLPUSH" => with(
            "LMOVE",
            &[rest[0], rest[1], word("RIGHT"), word("LEFT")],
            None,
        ),
        "BRPOPLPUSH" => with(
            "BLMOVE",
            &[rest[0], rest[1], word("RIGHT"), word("LEFT"), rest[2]],
            None,
        ),
        "MSET" | "MSETNX" if !rest.len().is_multiple_of(2) => {
            Translated::Refused(wrong_arity(args[0]))
        }
        "HSET" | "HMSET" if rest.len().is_multiple_of(2) => {
            Translated::Refused(wrong_arity(args[0]))
        }
        "HMSET" => with("HSET", rest, Some(Shape::Ok)),
        // ASYNC and SYNC choose how Redis frees memory; ours is freed as it goes.
        "FLUSHALL" | "FLUSHDB" => with("FLUSHALL", &[], None),
        "INFO" => with("INFO", &[], Some(Shape::InfoText)),
        "ZRANDMEMBER" if has_word(rest, "WITHSCORES") => {
            with("ZRANDMEMBER", rest, Some(Shape::FlatPairs))
        }
        "HRANDFIELD" if has_word(rest, "WITHVALUES") => {
            with("HRANDFIELD", rest, Some(Shape::FlatPairs))
        }
        // The older range commands are ZRANGE's forms since Redis 6.2.
        // Their forms are fixed by their names: ZRANGE's own options are refused.
        "ZREVRANGE" | "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE"
            if ["BYSCORE", "BYLEX", "REV"]
                .iter()
                .any(|w| has_word(&rest[3..], w)) =>
        {
            Translated::Refused(Value::error(ErrorCode::Syntax, "syntax error"))
        }
        "ZREVRANGE" | "ZRANGEBYSCORE" | "ZREVRANGEBYSCORE" => {
            let mut words = vec![word("ZRANGE"), rest[0], rest[1], rest[2]];
            if name != "ZREVRANGE" {
                words.push(word("BYSCORE"));
            }
            if name != "ZRANGEBYSCORE" {
                words.push(word("REV"));
            }
            words.extend(rest[3..].iter().copied());
            let shape = has_word(rest, "WITHSCORES").then_some(Shape::FlatPairs);
            Translated::Native {
                words: words.into(),
                shape,
            }
        }
        "GEORADIUS" | "GEORADIUS_RO" | "GEORADIUSBYMEMBER" | "GEORADIUSBYMEMBER_RO" => {
            georadius(name, rest)
        }
        "ZUNION" | "ZINTER" | "ZDIFF" if has_word(rest, "WITHSCORES") => Translated::Native {
            words: Cow::Borrowed(args),
            shape: Some(Shape::FlatPairs),
        },
        "ZRANGE" if has_word(rest, "WITHSCORES") => with("ZRANGE", rest, Some(Shape::FlatPairs)),
        "LPOP" | "RPOP" if rest.len() > 2 => Translated::Refused(wrong_arity(args[0])),
        "LPOP" | "RPOP" if rest.len() > 1 => Translated::Native {
            words: Cow::Borrowed(args),
            shape: Some(Shape::NilArray),
        },
        "BLPOP" | "BRPOP" | "BLMPOP" | "LMPOP" | "ZMPOP" | "BZPOPMIN" | "BZPOPMAX" | "BZMPOP" => {
            Translated::Native {
                words: Cow::Borrowed(args),
                shape: Some(Shape::NilArray),
            }
        }
        "ZPOPMIN" | "ZPOPMAX" => {
            let shape = if rest.len() > 1 {
                Shape::FlatPairs
            } else {
                Shape::OnePair
            };
            Translated::Native {
                words: Cow::Borrowed(args),
                shape: Some(shape),
            }
        }
        // Most commands are ours by the same name: their words go on as they came.
        _ => Translated::Native {
            words: Cow::Borrowed(args),
            shape: None,
        },
    }
}

/// SLOWLOG GET/LEN/RESET and LATENCY LATEST/HISTORY/RESET as our SLOWLOG.* and
/// LATENCY.* commands, and their HELP.
fn diagnostics<'a>(name: &str, rest: &[&'a [u8]]) -> Translated<'a> {
    let sub = String::from_utf8_lossy(rest[0]).to_ascii_uppercase();
    let ours = match (name, sub.as_str()) {
        ("SLOWLOG", "GET") => "SLOWLOG.GET",
        ("SLOWLOG", "LEN") => "SLOWLOG.LEN",
        ("SLOWLOG", "RESET") => "SLOWLOG.RESET",
        ("LATENCY", "LATEST") => "LATENCY.LATEST",
        ("LATENCY", "HISTORY") => "LATENCY.HISTORY",
        ("LATENCY", "RESET") => "LATENCY.RESET",
        (_, "HELP") => return Translated::Refused(diagnostics_help(name)),
        _ => return Translated::Refused(unknown_subcommand(name, rest[0])),
    };
    as_ours(ours, &rest[1..])
}

/// A subcommand's request as our command `ours` with the words after the subcommand.
fn as_ours<'a>(ours: &'static str, rest: &[&'a [u8]]) -> Translated<'a> {
    Translated::Native {
        words: std::iter::once(ours.as_bytes())
            .chain(rest.iter().cloned())
            .collect::<Vec<_>>()
            .into(),
        shape: None,
    }
}

/// Redis's refusal of a subcommand it does not have.
fn unknown_subcommand(name: &str, sub: &[u8]) -> Value {
    Value::error(
        ErrorCode::Syntax,
        format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try {name} HELP.",
            String::from_utf8_lossy(sub)
        ),
    )
}

/// ACL WHOAMI/SETUSER/DELUSER/LIST/CAT as our ACL.* commands, which the connection
/// answers from its session and the node's users.
fn acl<'a>(rest: &[&'a [u8]]) -> Translated<'a> {
    let sub = String::from_utf8_lossy(rest[0]).to_ascii_uppercase();
    let ours = match sub.as_str() {
        "WHOAMI" => "ACL.WHOAMI",
        "SETUSER" => "ACL.SETUSER",
        "DELUSER" => "ACL.DELUSER",
        "LIST" => "ACL.LIST",
        "CAT" => "ACL.CAT",
        "HELP" => {
            let lines = [
                "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CAT [<category>]",
                "    List all commands that belong to <category>, or all command categories",
                "    when no category is specified.",
                "DELUSER <username> [<username> ...]",
                "    Delete a list of users.",
                "LIST",
                "    Show users details in config file format.",
                "SETUSER <username> <attribute> [<attribute> ...]",
                "    Create or modify a user with the specified attributes.",
                "WHOAMI",
                "    Return the current connection username.",
            ];
            return Translated::Refused(Value::Array(
                lines.iter().map(|line| Value::text(*line)).collect(),
            ));
        }
        _ => return Translated::Refused(unknown_subcommand("ACL", rest[0])),
    };
    as_ours(ours, &rest[1..])
}

/// SLOWLOG HELP and LATENCY HELP: the subcommands served.
fn diagnostics_help(name: &str) -> Value {
    let lines: &[&str] = if name == "SLOWLOG" {
        &[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Print this help.",
        ]
    } else {
        &[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HELP",
            "    Print this help.",
        ]
    };
    Value::Array(lines.iter().map(|line| Value::text(*line)).collect())
}

/// GEORADIUS and GEORADIUSBYMEMBER (and their read-only forms) as the GEOSEARCH or
/// GEOSEARCHSTORE they have been since Redis 6.2: the centre and radius moved into
/// FROMLONLAT/FROMMEMBER and BYRADIUS, STORE and STOREDIST into GEOSEARCHSTORE.
fn georadius<'a>(name: &str, rest: &[&'a [u8]]) -> Translated<'a> {
    let word = |w: &'static str| w.as_bytes();
    let by_member = name.starts_with("GEORADIUSBYMEMBER");
    let (center, options) = if by_member {
        (vec![word("FROMMEMBER"), rest[1]], &rest[2..])
    } else {
        (vec![word("FROMLONLAT"), rest[1], rest[2]], &rest[3..])
    };
    let mut search = vec![rest[0]];
    search.extend(center);
    search.push(word("BYRADIUS"));
    search.extend(options[..2].iter().cloned());
    let mut store = None;
    let mut at = 2;
    while at < options.len() {
        let option = &options[at];
        let has_value = at + 1 < options.len();
        let storing =
            option.eq_ignore_ascii_case(b"STORE") || option.eq_ignore_ascii_case(b"STOREDIST");
        if storing && has_value && !name.ends_with("_RO") {
            store = Some((options[at + 1], option.eq_ignore_ascii_case(b"STOREDIST")));
            at += 2;
            continue;
        }
        if option.eq_ignore_ascii_case(b"COUNT") && has_value {
            search.extend(options[at..at + 2].iter().cloned());
            at += 2;
            continue;
        }
        search.push(*option);
        at += 1;
    }
    let Some((destination, by_distance)) = store else {
        return Translated::Native {
            words: std::iter::once(word("GEOSEARCH")).chain(search).collect(),
            shape: None,
        };
    };
    if ["WITHDIST", "WITHHASH", "WITHCOORD"]
        .iter()
        .any(|w| has_word(&search, w))
    {
        return Translated::Refused(Value::error(
            ErrorCode::Syntax,
            "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ));
    }
    let mut words = vec![word("GEOSEARCHSTORE"), destination];
    words.extend(search);
    if by_distance {
        words.push(word("STOREDIST"));
    }
    Translated::Native {
        words: words.into(),
        shape: None,
    }
}

fn has_word(args: &[&[u8]], word: &str) -> bool {
    args.iter().any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    /// What the RESP port makes of `line`: its count checked, then translated into our
    /// words, or refused with Redis's error.
    fn run(line: &str) -> Result<Vec<Vec<u8>>, Value> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let name = line.split(' ').next().unwrap().to_ascii_uppercase();
        if let Some(refusal) = arity_refusal(&name, &args) {
            return Err(refusal);
        }
        match translate(&name, &args) {
            Translated::Native { words, .. } => Ok(words.iter().map(|w| w.to_vec()).collect()),
            Translated::Refused(error) => Err(error),
        }
    }

    fn native(line: &str) -> Vec<Vec<u8>> {
        run(line).unwrap_or_else(|error| panic!("{line}: {error:?}"))
    }

    #[test]
    fn redis_only_names_become_ours() {
        assert_eq!(native("incr n"), words("INCRBY n 1"));
        assert_eq!(native("SETEX k 10 v"), words("SET k v EX 10"));
        assert_eq!(native("psetex k 1500 v"), words("SET k v PX 1500"));
        assert_eq!(native("SETNX k v"), words("SET k v NX"));
        assert_eq!(native("UNLINK a b"), words("DEL a b"));
        assert_eq!(native("RPOPLPUSH a b"), words("LMOVE a b RIGHT LEFT"));
        assert_eq!(native("FLUSHDB ASYNC"), words("FLUSHALL"));
        assert_eq!(native("GET k"), words("GET k"));
        assert_eq!(
            native("GEORADIUS g 15 37 200 km WITHDIST COUNT 2 ASC"),
            words("GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST COUNT 2 ASC")
        );
        assert_eq!(
            native("georadiusbymember {g}a m 7 km store {g}b"),
            words("GEOSEARCHSTORE {g}b {g}a FROMMEMBER m BYRADIUS 7 km")
        );
        assert_eq!(
            native("GEORADIUS {g}a 1 2 3 m STOREDIST {g}b COUNT 1"),
            words("GEOSEARCHSTORE {g}b {g}a FROMLONLAT 1 2 BYRADIUS 3 m COUNT 1 STOREDIST")
        );
        // The read-only forms pass STORE on, for GEOSEARCH to refuse.
        assert_eq!(
            native("GEORADIUS_RO g 1 2 3 m STORE x"),
            words("GEOSEARCH g FROMLONLAT 1 2 BYRADIUS 3 m STORE x")
        );
    }

    #[test]
    fn arity_errors_read_as_redis_writes_them() {
        for line in [
            "GET",
            "GET a b",
            "SET k",
            "MSET a",
            "MSET a 1 b",
            "HSET h f",
            "HMSET h f v g",
        ] {
            let Err(Value::Error(error)) = run(line) else {
                panic!("{line} must be refused");
            };
            let name = line.split(' ').next().unwrap().to_lowercase();
            assert_eq!(
                error.message,
                format!("wrong number of arguments for '{name}' command")
            );
        }
    }
}
