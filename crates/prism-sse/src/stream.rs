//! `SseStream`: the thin `futures::Stream` shell around [`Decoder`] for byte streams such as a
//! reqwest or hyper body. All parsing lives in the decoder; this only moves bytes and frames.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use pin_project_lite::pin_project;

use crate::{DecodeError, Decoder, Frame};

/// An error from [`SseStream`]; the stream ends after yielding one.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    /// The inner byte stream failed.
    #[error("transport error")]
    Transport(#[source] E),
    /// The bytes could not be decoded (an event exceeded the size limit).
    #[error(transparent)]
    Decode(DecodeError),
}

pin_project! {
    /// Decodes a stream of byte chunks (`Result<B, E>` with `B: AsRef<[u8]>`, e.g. `bytes::Bytes`)
    /// into [`Frame`]s.
    ///
    /// Frames come out as soon as their last byte arrives. The stream ends when the inner stream
    /// ends (an unterminated event is dropped, as the spec says; see [`truncated`](Self::truncated))
    /// or right after yielding an error.
    pub struct SseStream<S> {
        #[pin]
        inner: S,
        decoder: Decoder,
        // Decoded frames not yet yielded, in reverse order so that `pop` yields the oldest.
        ready: Vec<Frame>,
        error: Option<DecodeError>,
        truncated: usize,
        done: bool,
    }
}

impl<S> SseStream<S> {
    /// Decodes `inner` with a default [`Decoder`].
    pub fn new(inner: S) -> Self {
        Self::with_decoder(inner, Decoder::new())
    }

    /// Decodes `inner` with `decoder` (for another size limit, or to see unknown lines).
    pub fn with_decoder(inner: S, decoder: Decoder) -> Self {
        Self { inner, decoder, ready: Vec::new(), error: None, truncated: 0, done: false }
    }

    /// The decoder, for its [`last_event_id`](Decoder::last_event_id) and
    /// [`reconnection_time`](Decoder::reconnection_time).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// After the inner stream ended: how many bytes of an unterminated event were dropped
    /// (0 = the stream ended cleanly on an event boundary).
    pub fn truncated(&self) -> usize {
        self.truncated
    }
}

impl<S, B, E> Stream for SseStream<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    type Item = Result<Frame, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(frame) = this.ready.pop() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if let Some(error) = this.error.take() {
                return Poll::Ready(Some(Err(StreamError::Decode(error))));
            }
            if *this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(error) = this.decoder.feed(chunk.as_ref(), this.ready) {
                        *this.error = Some(error);
                        *this.done = true;
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(StreamError::Transport(error))));
                }
                Poll::Ready(None) => {
                    *this.truncated = this.decoder.finish_into(this.ready);
                    *this.done = true;
                }
            }
            this.ready.reverse();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            let pending = self.ready.len() + usize::from(self.error.is_some());
            (pending, Some(pending))
        } else {
            (self.ready.len(), None)
        }
    }
}
