//! The response body type: a whole buffer (JSON, metrics text) or a live event stream. The
//! stream is any body (in practice `stream::SseBody`), so this module sits below the stages that
//! produce responses and imports none of them.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A live event stream.
type StreamBody = Pin<Box<dyn Body<Data = Bytes, Error = Infallible> + Send>>;

/// Every response the gateway sends has this body.
#[derive(Debug)]
pub struct ResponseBody(Kind);

enum Kind {
    /// A complete body, sent in one frame.
    Full(Option<Bytes>),
    /// A translated event stream.
    Sse(StreamBody),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Full(bytes) => f.debug_tuple("Full").field(bytes).finish(),
            Kind::Sse(_) => f.write_str("Sse"),
        }
    }
}

impl ResponseBody {
    /// A complete body.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        ResponseBody(Kind::Full(if bytes.is_empty() { None } else { Some(bytes) }))
    }

    /// A streamed body.
    pub(crate) fn sse(body: impl Body<Data = Bytes, Error = Infallible> + Send + 'static) -> Self {
        ResponseBody(Kind::Sse(Box::pin(body)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Sse(body) => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Sse(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Sse(_) => SizeHint::default(),
        }
    }
}
