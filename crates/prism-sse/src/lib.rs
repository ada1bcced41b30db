#![doc = include_str!("../README.md")]

mod decode;
mod encode;
mod event;
mod stream;
mod utf8_bytes;

pub use decode::{DecodeError, Decoder};
pub use encode::{DONE, EncodeError, EventRef, write_comment, write_data, write_done, write_event};
pub use event::{Event, Frame};
pub use stream::{SseStream, StreamError};
pub use utf8_bytes::Utf8Bytes;
