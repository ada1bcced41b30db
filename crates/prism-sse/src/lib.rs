//! Server-sent events codec for Prism: an incremental, I/O-free decoder that follows the WHATWG
//! "event stream interpretation" exactly, an encoder into any `BufMut`, and a `Stream` adapter.
//!
//! ```
//! use prism_sse::{Decoder, Frame};
//!
//! let mut decoder = Decoder::new();
//! let mut frames = Vec::new();
//! // Input may be split anywhere, even inside a CRLF or a multi-byte character.
//! decoder.feed(b"event: ping\r\ndata: {\"a\":", &mut frames)?;
//! decoder.feed(b"1}\r", &mut frames)?;
//! decoder.feed(b"\n\r\n: keep-alive\n", &mut frames)?;
//! assert_eq!(decoder.finish(), 0);
//!
//! let Frame::Event(event) = &frames[0] else { panic!("expected an event") };
//! assert_eq!(event.event_type(), "ping");
//! assert_eq!(event.data, r#"{"a":1}"#);
//! assert_eq!(frames[1], Frame::Comment("keep-alive".into()));
//!
//! let mut wire = Vec::new();
//! prism_sse::write_data(&mut wire, b"line one\nline two");
//! assert_eq!(wire, b"data: line one\ndata: line two\n\n");
//! # Ok::<(), prism_sse::DecodeError>(())
//! ```

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
