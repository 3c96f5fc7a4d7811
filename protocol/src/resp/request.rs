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

/// Most argument spans a parser keeps room for between requests (1 KiB): requests of up
/// to this many words allocate nothing, and one huge request does not leave its
/// connection holding its room for ever.
const ROOM_KEPT: usize = 64;

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

/// A multibulk whose arguments are still arriving: where the next one starts and how many
/// are left.
#[derive(Debug, Default)]
struct Multibulk {
    offset: usize,
    remaining: usize,
}

/// One connection's request reader; it remembers how far it read into a request that has
/// not arrived whole, so a large one costs one scan, not one per read.
#[derive(Debug)]
pub struct RequestParser {
    max_request_bytes: usize,
    partial: Option<Multibulk>,
    /// Where the arguments read so far lie; handed out with each request and given back,
    /// so its room is kept between requests.
    spans: Vec<std::ops::Range<usize>>,
}

/// One whole request at the front of the buffer it was read from: its words borrowed
/// from that buffer (or, for an inline line with quotes, held here), until the caller
/// has run it and drops its bytes from the buffer.
#[derive(Debug)]
pub struct Request {
    len: usize,
    spans: Vec<std::ops::Range<usize>>,
    inline: Vec<Bytes>,
}

impl Request {
    /// Bytes the request takes at the front of its buffer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the request takes no bytes (never, for a request `next_request` gave).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many words it has, the command's name first.
    pub fn word_count(&self) -> usize {
        if self.inline.is_empty() {
            self.spans.len()
        } else {
            self.inline.len()
        }
    }

    /// Its words, the command's name first; `buf` is the buffer it was read from, not yet
    /// advanced past it.
    pub fn words<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let spans = self.spans.iter().map(move |span| &buf[span.clone()]);
        let inline = self.inline.iter().map(|word| &word[..]);
        spans.chain(inline)
    }
}

impl RequestParser {
    /// A reader that refuses requests over `max_request_bytes` (arguments and framing).
    pub fn new(max_request_bytes: usize) -> Self {
        RequestParser {
            max_request_bytes,
            partial: None,
            spans: Vec::new(),
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
        let Some(request) = self.next_request(buf, authenticated)? else {
            return Ok(None);
        };
        let words = request.words(buf).map(Bytes::copy_from_slice).collect();
        let _ = buf.split_to(request.len());
        self.give_back(request);
        Ok(Some(words))
    }

    /// Finds the next whole request at the front of `buf`, leaving its bytes there for
    /// its words to borrow: the caller runs it, then drops `len()` bytes from `buf` and
    /// gives the request back. Empty requests are dropped from `buf` here. `None` until
    /// one has arrived whole.
    ///
    /// # Errors
    /// As `next`.
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
        authenticated: bool,
    ) -> Result<Option<Request>, ProtocolError> {
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
                        Inline::Empty(len) => {
                            let _ = buf.split_to(len);
                            continue;
                        }
                        Inline::Request { len, words } => {
                            return Ok(Some(Request {
                                len,
                                spans: Vec::new(),
                                inline: words,
                            }));
                        }
                    },
                }
            }
            return self.continue_multibulk(buf, authenticated);
        }
    }

    /// Takes back a request that has been run, for the room its spans hold.
    pub fn give_back(&mut self, request: Request) {
        let mut spans = request.spans;
        spans.clear();
        if spans.capacity() <= ROOM_KEPT && spans.capacity() > self.spans.capacity() {
            self.spans = spans;
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
        // Room for spans grows with the arguments that arrive, never with the count claimed.
        self.spans.clear();
        if self.spans.capacity() > ROOM_KEPT {
            self.spans = Vec::new();
        }
        self.partial = Some(Multibulk {
            offset: eol + 2,
            remaining,
        });
        Ok(Start::Begun)
    }

    fn continue_multibulk(
        &mut self,
        buf: &[u8],
        authenticated: bool,
    ) -> Result<Option<Request>, ProtocolError> {
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
            self.spans.push(start..end);
            partial.offset = end + 2;
            partial.remaining -= 1;
        }
        let done = self.partial.take().expect("a multibulk is being read");
        Ok(Some(Request {
            len: done.offset,
            spans: std::mem::take(&mut self.spans),
            inline: Vec::new(),
        }))
    }
}

enum Start {
    Incomplete,
    Empty(usize),
    Begun,
}

enum Inline {
    Incomplete,
    /// A blank line of this many bytes.
    Empty(usize),
    /// A line of `len` bytes and its words.
    Request {
        len: usize,
        words: Vec<Bytes>,
    },
}

/// A telnet-style line: arguments split as Redis's `sdssplitargs` splits them.
fn inline(buf: &[u8]) -> Result<Inline, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return refuse("too big inline request");
        }
        return Ok(Inline::Incomplete);
    };
    if newline > INLINE_MAX {
        return refuse("too big inline request");
    }
    let len = newline + 1;
    let line = &buf[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let words =
        split_args(line).ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))?;
    if words.is_empty() {
        return Ok(Inline::Empty(len));
    }
    Ok(Inline::Request { len, words })
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
    let mut at = from;
    loop {
        at += buf.get(at..)?.iter().position(|&b| b == b'\r')?;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => at += 1,
            None => return None,
        }
    }
}

/// A length as Redis's `string2ll` reads one: an optional `-`, digits, nothing else.
fn parse_int(text: &[u8]) -> Option<i64> {
    // Every argument's length line comes through here, so it reads digits itself.
    let (negative, digits) = match text.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
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

    proptest::proptest! {
        #[test]
        fn lengths_read_as_rust_reads_decimal_integers(text in "[-+0-9a ]{0,22}") {
            let expected = if text.starts_with('+') { None } else { text.parse::<i64>().ok() };
            proptest::prop_assert_eq!(parse_int(text.as_bytes()), expected);
        }
    }

    #[test]
    fn lengths_at_the_edges_of_the_range() {
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"-"), None);
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"+3"), None);
    }

    #[test]
    fn a_claimed_length_costs_nothing_until_its_bytes_arrive() {
        let mut parser = RequestParser::new(1 << 20);
        let mut buf = BytesMut::from(&b"*1000000\r\n$100000\r\n"[..]);
        assert_eq!(parser.next(&mut buf, true).unwrap(), None);
        assert!(parser.partial.is_some());
        assert!(parser.spans.capacity() <= 64, "{}", parser.spans.capacity());
    }

    #[test]
    fn a_huge_request_leaves_no_room_held_after_it() {
        let mut parser = RequestParser::new(1 << 24);
        let mut request = format!("*{}\r\n", ROOM_KEPT * 4).into_bytes();
        for _ in 0..ROOM_KEPT * 4 {
            request.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut buf = BytesMut::from(&request[..]);
        let huge = parser.next_request(&mut buf, true).unwrap().unwrap();
        assert_eq!(huge.word_count(), ROOM_KEPT * 4);
        assert!(huge.words(&buf).all(|word| word == b"x"));
        assert_eq!(huge.len(), buf.len());
        parser.give_back(huge);
        assert!(parser.spans.capacity() <= ROOM_KEPT);
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..]);
        let ping = parser.next_request(&mut buf, true).unwrap().unwrap();
        assert_eq!(ping.words(&buf).collect::<Vec<_>>(), [b"PING"]);
    }

    #[test]
    fn a_request_borrows_its_words_and_leaves_its_bytes_until_run() {
        let mut parser = RequestParser::new(1 << 20);
        let mut buf =
            BytesMut::from(&b"\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset \"a b\" c\r\n"[..]);
        let get = parser.next_request(&mut buf, true).unwrap().unwrap();
        assert_eq!(get.words(&buf).collect::<Vec<_>>(), [&b"GET"[..], b"k"]);
        let _ = buf.split_to(get.len());
        parser.give_back(get);
        let set = parser.next_request(&mut buf, true).unwrap().unwrap();
        assert_eq!(set.word_count(), 3);
        assert_eq!(
            set.words(&buf).collect::<Vec<_>>(),
            [&b"set"[..], b"a b", b"c"]
        );
        assert_eq!(set.len(), buf.len());
    }
}
