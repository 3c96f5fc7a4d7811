//! Error types: stable wire error codes, body decode failures and stream-level framing failures.

use thiserror::Error;

/// Stable numeric codes carried by error replies; a code, once published, never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame body could not be decoded (truncated, trailing bytes, bad tag).
    Protocol = 1,
    /// The opcode or command name is not in the command table.
    UnknownCommand = 2,
    /// Wrong number or shape of arguments, or conflicting options.
    Syntax = 3,
    /// The key holds a value of another kind.
    WrongType = 4,
    /// The stored value is not an integer, or the arithmetic would overflow.
    NotInteger = 5,
    /// A frame was larger than the server accepts; the connection is closed after this.
    FrameTooLarge = 6,
    /// A key was longer than the maximum key length.
    KeyTooLarge = 7,
    /// The client asked for a protocol version the server does not speak.
    UnsupportedVersion = 8,
    /// The server refused the connection because it is at `maxclients`.
    MaxClients = 9,
    /// The server is shutting down and accepts no new requests.
    ShuttingDown = 10,
    /// An expiry time was zero, negative or too large.
    InvalidExpire = 11,
    /// A shard the request needed could not answer.
    Internal = 12,
    /// HELLO asked for a shard that does not exist.
    NoSuchShard = 13,
    /// Too many keys or elements in one request.
    TooManyElements = 14,
    /// The record the command needs does not exist (or has expired).
    NotFound = 15,
    /// The record changed hands or state: e.g. completing an idempotency record whose lease
    /// another caller has taken over.
    Conflict = 16,
    /// A command that must run on one shard named keys owned by several.
    CrossShard = 17,
    /// A value is not a valid decimal number, or arithmetic on it would give NaN or an
    /// infinity.
    NotFloat = 18,
    /// The server cannot write its log (a full disk, a failed sync): writes are refused
    /// until it can, and reads go on.
    Misconf = 19,
    /// The reply would carry more than the server lets one reply carry; the request did
    /// nothing.
    ReplyTooLarge = 20,
    /// The server holds its `maxmemory`: commands that would add data are refused, while
    /// reads and commands that only remove data go on.
    Oom = 21,
    /// The connection is refused: protected mode serves loopback clients only.
    Denied = 22,
    /// The connection must authenticate (AUTH, or HELLO with AUTH) first.
    NoAuth = 23,
    /// The username and password do not match an enabled user.
    WrongPass = 24,
    /// The connection's user may not run this command, or touch one of its keys.
    NoPerm = 25,
    /// Another node owns the key's slot; the message is `slot host:port epoch`.
    Moved = 26,
    /// The node serves no keys now: not yet in a formed cluster, or its view of the
    /// topology is not confirmed by a quorum (it may be cut off, or just resumed).
    ClusterDown = 27,
    /// The request names keys on several nodes; each node must be sent its part.
    CrossNode = 28,
    /// The key's slot is moving to another node; nothing ran. Retry shortly: the write
    /// goes on once the slot's new owner takes it (usually within milliseconds).
    TryAgain = 29,
    /// A string value would grow past the longest value the node accepts (its frame
    /// limit, Redis's `proto-max-bulk-len`); nothing changed.
    ValueTooLarge = 30,
    /// A blocking pop was ended by another client's CLIENT UNBLOCK ... ERROR; nothing
    /// was popped.
    Unblocked = 31,
}

impl ErrorCode {
    /// Every code, in numeric order; used by the docs and by exhaustive tests.
    pub const ALL: [ErrorCode; 31] = [
        ErrorCode::Protocol,
        ErrorCode::UnknownCommand,
        ErrorCode::Syntax,
        ErrorCode::WrongType,
        ErrorCode::NotInteger,
        ErrorCode::FrameTooLarge,
        ErrorCode::KeyTooLarge,
        ErrorCode::UnsupportedVersion,
        ErrorCode::MaxClients,
        ErrorCode::ShuttingDown,
        ErrorCode::InvalidExpire,
        ErrorCode::Internal,
        ErrorCode::NoSuchShard,
        ErrorCode::TooManyElements,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::CrossShard,
        ErrorCode::NotFloat,
        ErrorCode::Misconf,
        ErrorCode::ReplyTooLarge,
        ErrorCode::Oom,
        ErrorCode::Denied,
        ErrorCode::NoAuth,
        ErrorCode::WrongPass,
        ErrorCode::NoPerm,
        ErrorCode::Moved,
        ErrorCode::ClusterDown,
        ErrorCode::CrossNode,
        ErrorCode::TryAgain,
        ErrorCode::ValueTooLarge,
        ErrorCode::Unblocked,
    ];

    /// Maps a wire code back to the enum; unknown codes come from newer servers.
    pub fn from_u16(code: u16) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| *c as u16 == code)
    }

    /// The upper-case name clients print, e.g. `WRONGTYPE`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Protocol => "PROTOCOL",
            ErrorCode::UnknownCommand => "UNKNOWN_COMMAND",
            ErrorCode::Syntax => "SYNTAX",
            ErrorCode::WrongType => "WRONGTYPE",
            ErrorCode::NotInteger => "NOT_INTEGER",
            ErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            ErrorCode::KeyTooLarge => "KEY_TOO_LARGE",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::MaxClients => "MAX_CLIENTS",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::InvalidExpire => "INVALID_EXPIRE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::NoSuchShard => "NO_SUCH_SHARD",
            ErrorCode::TooManyElements => "TOO_MANY_ELEMENTS",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::CrossShard => "CROSS_SHARD",
            ErrorCode::NotFloat => "NOT_FLOAT",
            ErrorCode::Misconf => "MISCONF",
            ErrorCode::ReplyTooLarge => "REPLY_TOO_LARGE",
            ErrorCode::Oom => "OOM",
            ErrorCode::Denied => "DENIED",
            ErrorCode::NoAuth => "NOAUTH",
            ErrorCode::WrongPass => "WRONGPASS",
            ErrorCode::NoPerm => "NOPERM",
            ErrorCode::Moved => "MOVED",
            ErrorCode::ClusterDown => "CLUSTER_DOWN",
            ErrorCode::CrossNode => "CROSS_NODE",
            ErrorCode::TryAgain => "TRY_AGAIN",
            ErrorCode::ValueTooLarge => "VALUE_TOO_LARGE",
            ErrorCode::Unblocked => "UNBLOCKED",
        }
    }
}

/// Why a frame body could not be decoded; the stream itself is still in sync.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The body ended in the middle of a field.
    #[error("truncated body")]
    Truncated,
    /// Bytes were left after the last field.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// A varint ran past ten bytes or past 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// A count is larger than the rest of the frame could hold.
    #[error("element count {0} exceeds what the frame holds")]
    CountTooLarge(u64),
    /// A field promised as UTF-8 was not.
    #[error("invalid utf-8 in a text field")]
    InvalidUtf8,
    /// A value tag is not defined.
    #[error("unknown value tag 0x{0:02x}")]
    UnknownTag(u8),
    /// Values nest deeper than the protocol allows.
    #[error("values nested deeper than {0}")]
    TooDeep(usize),
    /// The opcode is not in the command table.
    #[error("unknown opcode 0x{0:04x}")]
    UnknownOpcode(u16),
    /// A field decoded but its value is out of range or contradicts another.
    #[error("{0}")]
    Invalid(&'static str),
    /// A key is longer than `MAX_KEY_BYTES`.
    #[error("key of {0} bytes exceeds the maximum key length")]
    KeyTooLarge(usize),
    /// An expiry is zero, negative or past the largest supported time.
    #[error("invalid expire time")]
    InvalidExpire,
}

impl DecodeError {
    /// The error code a server replies with for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnknownOpcode(_) => ErrorCode::UnknownCommand,
            DecodeError::Invalid(_) => ErrorCode::Syntax,
            DecodeError::KeyTooLarge(_) => ErrorCode::KeyTooLarge,
            DecodeError::InvalidExpire => ErrorCode::InvalidExpire,
            _ => ErrorCode::Protocol,
        }
    }
}

/// Why the byte stream can no longer be trusted; the connection must be closed.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length prefix exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Length announced by the prefix.
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// The length prefix is too small to hold a request id.
    #[error("frame of {0} bytes is shorter than its header")]
    TooShort(u32),
    /// Reading or writing the socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// The error code sent with the closing push frame.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::TooShort(_) | FrameError::Io(_) => ErrorCode::Protocol,
        }
    }
}
