//! Reads RESP requests — multibulk arrays and inline lines — with Redis's limits and
//! Redis's error texts, so clients and Redis's own protocol tests see what Redis shows.

use bytes::{Bytes, BytesMut};

/// Longest inline line, and longest length line of a multibulk, Redis accepts
/// (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;
/// Most arguments a connection that has not authenticated may send in one request.
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
/// Longest argument a connection that has not authenticated may send.
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16 * 1024;

/// A request the server cannot read; it answers `-ERR Protocol error: ...` and closes, as
/// Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn refuse<T>(why: impl Into<String>) -> Result<T, ProtocolError> {
    Err(ProtocolError(why.into()))
}

/// A multibulk whose arguments are still arriving: where the next one starts, how many are
/// left, and where those already read lie.
#[derive(Debug, Default)]
struct Multibulk {
    offset: usize,
    remaining: usize,
    args: Vec<std::ops::Range<usize>>,
}

/// One connection's request reader; it remembers how far it read into a request that has
/// not arrived whole, so a large one costs one scan, not one per read.
#[derive(Debug)]
pub struct RequestParser {
    max_request_bytes: usize,
    partial: Option<Multibulk>,
}

impl RequestParser {
    /// A reader that refuses requests over `max_request_bytes` (arguments and framing).
    pub fn new(max_request_bytes: usize) -> Self {
        RequestParser {
            max_request_bytes,
            partial: None,
        }
    }

    /// Takes the next whole request off the front of `buf`: its arguments (the command
    /// name first), `None` until one has arrived whole. Empty requests (a blank line,
    /// `*0`) are skipped, as Redis skips them. `authenticated` lifts the limits Redis puts
    /// on connections that have not authenticated.
    ///
    /// # Errors
    /// A request Redis would refuse, with Redis's text; the connection must then close,
    /// since where the next request starts is unknown.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.partial.is_none() {
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => match self.start_multibulk(buf, authenticated)? {
                        Start::Incomplete => return Ok(None),
                        Start::Empty(len) => {
                            let _ = buf.split_to(len);
                            continue;
                        }
                        Start::Begun => {}
                    },
                    Some(_) => match inline(buf)? {
                        Inline::Incomplete => return Ok(None),
                        Inline::Empty => continue,
                        Inline::Request(args) => return Ok(Some(args)),
                    },
                }
            }
            return self.continue_multibulk(buf, authenticated);
        }
    }

    fn start_multibulk(&mut self, buf: &[u8], authenticated: bool) -> Result<Start, ProtocolError> {
        let Some(eol) = find_crlf(buf, 0) else {
            if buf.len() > INLINE_MAX {
                return refuse("too big mbulk count string");
            }
            return Ok(Start::Incomplete);
        };
        let count = match parse_int(&buf[1..eol]) {
            Some(count) if count <= i64::from(i32::MAX) => count,
            _ => return refuse("invalid multibulk length"),
        };
        if !authenticated && count > UNAUTHENTICATED_MAX_ARGS {
            return refuse("unauthenticated multibulk length");
        }
        if count <= 0 {
            return Ok(Start::Empty(eol + 2));
        }
        let remaining = usize::try_from(count).unwrap_or(usize::MAX);
        self.partial = Some(Multibulk {
            offset: eol + 2,
            remaining,
            // Room grows with the arguments that arrive, never with the count claimed.
            args: Vec::with_capacity(remaining.min(64)),
        });
        Ok(Start::Begun)
    }

    fn continue_multibulk(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let max_request_bytes = self.max_request_bytes;
        let partial = self.partial.as_mut().expect("a multibulk is being read");
        while partial.remaining > 0 {
            let at = partial.offset;
            let Some(&first) = buf.get(at) else {
                return Ok(None);
            };
            if first != b'$' {
                let got = char::from(first);
                self.partial = None;
                return refuse(format!("expected '$', got '{got}'"));
            }
            let Some(eol) = find_crlf(buf, at) else {
                if buf.len() - at > INLINE_MAX {
                    self.partial = None;
                    return refuse("too big bulk count string");
                }
                return Ok(None);
            };
            let len = match parse_int(&buf[at + 1..eol]) {
                Some(len) if len >= 0 => len,
                _ => {
                    self.partial = None;
                    return refuse("invalid bulk length");
                }
            };
            if !authenticated && len > UNAUTHENTICATED_MAX_BULK {
                self.partial = None;
                return refuse("unauthenticated bulk length");
            }
            let start = eol + 2;
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| start.checked_add(len))
                .filter(|&end| end <= max_request_bytes);
            let Some(end) = end else {
                self.partial = None;
                return refuse("invalid bulk length");
            };
            if buf.len() < end + 2 {
                return Ok(None);
            }
            partial.args.push(start..end);
            partial.offset = end + 2;
            partial.remaining -= 1;
        }
        let done = self.partial.take().expect("a multibulk is being read");
        let request = buf.split_to(done.offset).freeze();
        Ok(Some(
            done.args.into_iter().map(|r| request.slice(r)).collect(),
        ))
    }
}

enum Start {
    Incomplete,
    Empty(usize),
    Begun,
}

enum Inline {
    Incomplete,
    Empty,
    Request(Vec<Bytes>),
}

/// A telnet-style line: arguments split as Redis's `sdssplitargs` splits them.
fn inline(buf: &mut BytesMut) -> Result<Inline, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return refuse("too big inline request");
        }
        return Ok(Inline::Incomplete);
    };
    if newline > INLINE_MAX {
        return refuse("too big inline request");
    }
    let line = buf.split_to(newline + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let args =
        split_args(line).ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))?;
    if args.is_empty() {
        return Ok(Inline::Empty);
    }
    Ok(Inline::Request(args))
}

/// Splits a line into arguments: words separated by spaces, or quoted — `"..."` with
/// `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` with only `\'`. `None` for a quote left
/// open or a closing quote followed by something other than a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut at = 0;
    loop {
        while line.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let Some(&first) = line.get(at) else {
            return Some(args);
        };
        let mut arg = Vec::new();
        match first {
            b'"' => {
                at += 1;
                loop {
                    match *line.get(at)? {
                        b'\\'
                            if line.get(at + 1) == Some(&b'x')
                                && hex_pair(line.get(at + 2..at + 4)).is_some() =>
                        {
                            arg.push(hex_pair(line.get(at + 2..at + 4))?);
                            at += 4;
                        }
                        b'\\' => {
                            let escaped = *line.get(at + 1)?;
                            arg.push(match escaped {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => other,
                            });
                            at += 2;
                        }
                        b'"' => {
                            at += 1;
                            break;
                        }
                        byte => {
                            arg.push(byte);
                            at += 1;
                        }
                    }
                }
            }
            b'\'' => {
                at += 1;
                loop {
                    match *line.get(at)? {
                        b'\\' if line.get(at + 1) == Some(&b'\'') => {
                            arg.push(b'\'');
                            at += 2;
                        }
                        b'\'' => {
                            at += 1;
                            break;
                        }
                        byte => {
                            arg.push(byte);
                            at += 1;
                        }
                    }
                }
            }
            _ => {
                while let Some(&byte) = line.get(at).filter(|b| !b.is_ascii_whitespace()) {
                    arg.push(byte);
                    at += 1;
                }
            }
        }
        // A closing quote must end the word, as in Redis.
        let quoted = matches!(first, b'"' | b'\'');
        if quoted && line.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
            return None;
        }
        args.push(Bytes::from(arg));
    }
}

fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let pair = std::str::from_utf8(pair?).ok()?;
    u8::from_str_radix(pair, 16).ok()
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(2)
        .position(|w| w == b"\r\n")
        .map(|at| from + at)
}

/// A length as Redis's `string2ll` reads one: an optional `-`, digits, nothing else.
fn parse_int(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 || text.starts_with(b"+") {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8], authenticated: bool) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut parser = RequestParser::new(1 << 20);
        let mut buf = BytesMut::from(input);
        let mut requests = Vec::new();
        while let Some(args) = parser.next(&mut buf, authenticated)? {
            requests.push(args);
        }
        Ok(requests)
    }

    fn words(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn multibulk_and_inline_requests_read_alike() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv a\r\n\r\nGET k\r\n\r\n*0\r\nPING\n";
        assert_eq!(
            parse_all(input, true).unwrap(),
            vec![
                words(&["SET", "k", "v a\r\n"]),
                words(&["GET", "k"]),
                words(&["PING"])
            ]
        );
    }

    #[test]
    fn a_request_arriving_byte_by_byte_reads_as_one() {
        let input = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
        let mut parser = RequestParser::new(1 << 20);
        let mut buf = BytesMut::new();
        for (at, byte) in input.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let got = parser.next(&mut buf, true).unwrap();
            assert_eq!(got.is_some(), at == input.len() - 1, "after byte {at}");
            if let Some(args) = got {
                assert_eq!(args, words(&["ECHO", "hello world"]));
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn quotes_and_escapes_split_as_redis_splits_them() {
        let split = split_args(br#"set "a b" 'c\'d' "\x41\n" x"#).unwrap();
        assert_eq!(split, words(&["set", "a b", "c'd", "A\n", "x"]));
        assert_eq!(split_args(b"  \t "), Some(vec![]));
        assert_eq!(split_args(br#"get "open"#), None);
        assert_eq!(split_args(br#"get "a"b"#), None);
        assert_eq!(split_args(b"get 'a"), None);
    }

    #[test]
    fn bad_requests_get_redis_texts() {
        let error = |input: &[u8], authenticated| parse_all(input, authenticated).unwrap_err().0;
        assert_eq!(error(b"*x\r\n", true), "invalid multibulk length");
        assert_eq!(error(b"*3000000000\r\n", true), "invalid multibulk length");
        assert_eq!(error(b"*1\r\n$-1\r\n", true), "invalid bulk length");
        assert_eq!(error(b"*1\r\n$2000000\r\n", true), "invalid bulk length");
        assert_eq!(error(b"*1\r\nfoo\r\n", true), "expected '$', got 'f'");
        assert_eq!(error(b"set \"k\r\n", true), "unbalanced quotes in request");
        assert_eq!(error(b"*11\r\n", false), "unauthenticated multibulk length");
        assert_eq!(
            error(b"*1\r\n$16385\r\n", false),
            "unauthenticated bulk length"
        );
        assert!(parse_all(b"*10\r\n", false).unwrap().is_empty());
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(error(&long, true), "too big inline request");
        let mut count = b"*".to_vec();
        count.extend(std::iter::repeat_n(b'1', INLINE_MAX + 1));
        assert_eq!(error(&count, true), "too big mbulk count string");
    }

    #[test]
    fn a_claimed_length_costs_nothing_until_its_bytes_arrive() {
        let mut parser = RequestParser::new(1 << 20);
        let mut buf = BytesMut::from(&b"*1000000\r\n$100000\r\n"[..]);
        assert_eq!(parser.next(&mut buf, true).unwrap(), None);
        let partial = parser.partial.as_ref().unwrap();
        assert!(partial.args.capacity() <= 64, "{}", partial.args.capacity());
    }
}
