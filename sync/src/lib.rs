//! The lock-free pieces shared between shards, each model-checked with loom (`--cfg loom`).
//!
//! This crate has no dependencies outside `std` (and `loom` under `cfg(loom)`), so the
//! loom run compiles only this code and never asks tokio or bytes to build under loom.

mod atomic;
pub mod flags;
pub mod mailbox;
pub mod published;
pub mod slots;
pub mod tally;

pub use flags::Flags;
pub use mailbox::Mailbox;
pub use published::Published;
pub use slots::Slots;
pub use tally::Tally;
