//! Typed chunk streams over the gateway's SSE, and the stream manager.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use prism_sse::{Frame, SseStream, StreamError};
use prism_types::{ChatChunk, ChatCompletion};

use crate::accumulate::Accumulator;
use crate::error::{Error, api_error_from_body};

type ByteStream = BoxStream<'static, Result<Bytes, reqwest::Error>>;

/// A stream of `chat.completion.chunk`s. It ends after `[DONE]`; an error event from the server
/// is yielded as [`Error::Stream`], a stream cut before `[DONE]` as [`Error::Truncated`], and
/// either ends the stream. Dropping it closes the connection.
pub struct ChunkStream {
    inner: SseStream<ByteStream>,
    done: bool,
}

impl std::fmt::Debug for ChunkStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStream").field("done", &self.done).finish_non_exhaustive()
    }
}

impl ChunkStream {
    /// Wraps a body byte stream.
    pub(crate) fn new<S>(bytes: S) -> Self
    where
        S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
    {
        ChunkStream { inner: SseStream::new(Box::pin(bytes) as ByteStream), done: false }
    }

    /// Decodes one event's data: a chunk, or the server's error object.
    fn parse(event_type: &str, data: &str) -> Result<ChatChunk, Error> {
        let value: serde_json::Value =
            serde_json::from_str(data).map_err(|source| Error::Decode { what: "chunk", source })?;
        if value.get("error").is_some() || event_type == "error" {
            return Err(Error::Stream(api_error_from_body(None, data.as_bytes())));
        }
        serde_json::from_value(value).map_err(|source| Error::Decode { what: "chunk", source })
    }
}

impl Stream for ChunkStream {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            let frame = match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            let item = match frame {
                None => Err(Error::Truncated),
                Some(Err(StreamError::Transport(e))) => Err(Error::Transport(Box::new(e))),
                Some(Err(StreamError::Decode(e))) => Err(Error::Sse(e)),
                Some(Ok(Frame::Event(event))) => {
                    if event.data.as_str() == "[DONE]" {
                        self.done = true;
                        return Poll::Ready(None);
                    }
                    Self::parse(event.event_type(), &event.data)
                }
                // Comments are keep-alives; unknown lines are not surfaced by default.
                Some(Ok(_)) => continue,
            };
            if item.is_err() {
                self.done = true;
            }
            return Poll::Ready(Some(item));
        }
    }
}

/// The stream manager: iterate raw chunks (it is itself a `Stream` of chunks) or only the text
/// with [`ChatCompletionStream::text_stream`], then get the assembled completion with
/// [`ChatCompletionStream::final_completion`] — whether or not the stream was consumed first.
#[derive(Debug)]
pub struct ChatCompletionStream {
    chunks: ChunkStream,
    acc: Accumulator,
    /// The error that ended the stream, kept so `final_completion` can report it.
    failed: Option<String>,
    ended: bool,
}

impl ChatCompletionStream {
    pub(crate) fn new(chunks: ChunkStream) -> Self {
        ChatCompletionStream { chunks, acc: Accumulator::default(), failed: None, ended: false }
    }

    /// The content deltas only, as they arrive. Other chunks are still accumulated.
    pub fn text_stream(&mut self) -> TextStream<'_> {
        TextStream { manager: self }
    }

    /// What has been accumulated so far.
    pub fn current(&self) -> &Accumulator {
        &self.acc
    }

    /// Drains the rest of the stream and returns the assembled completion: content, refusal,
    /// reasoning, thinking blocks (ready to echo in the next request, see [`Accumulator`]), tool
    /// calls merged by index, finish reasons and usage.
    ///
    /// # Errors
    /// The error that ended the stream ([`Error::Stream`], [`Error::Truncated`], …); a later call
    /// reports it again as [`Error::Stream`] with the same message.
    pub async fn final_completion(&mut self) -> Result<ChatCompletion, Error> {
        use futures::StreamExt;
        while let Some(item) = self.next().await {
            item?;
        }
        if let Some(message) = &self.failed {
            return Err(Error::Stream(crate::ApiError {
                status: None,
                kind: None,
                code: None,
                param: None,
                message: message.clone(),
            }));
        }
        Ok(self.acc.completion())
    }

    /// Alias of [`ChatCompletionStream::final_completion`], as the OpenAI SDKs name it.
    ///
    /// # Errors
    /// As [`ChatCompletionStream::final_completion`].
    pub async fn get_final_completion(&mut self) -> Result<ChatCompletion, Error> {
        self.final_completion().await
    }
}

impl Stream for ChatCompletionStream {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.chunks).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(chunk))) => {
                this.acc.push(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.failed = Some(e.to_string());
                this.ended = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

/// Content deltas of a [`ChatCompletionStream`].
#[derive(Debug)]
pub struct TextStream<'a> {
    manager: &'a mut ChatCompletionStream,
}

impl Stream for TextStream<'_> {
    type Item = Result<String, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut *self.manager).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(chunk))) => {
                    let text: String =
                        chunk.choices.iter().filter_map(|c| c.delta.content.as_deref()).collect();
                    if !text.is_empty() {
                        return Poll::Ready(Some(Ok(text)));
                    }
                }
            }
        }
    }
}
