//! The client connection's socket, with a write deadline: a client that stops reading leaves
//! hyper waiting on a full socket forever, and while it waits it polls neither the response body
//! nor that body's own timers (idle, total), so the upstream connection would stay open too.
//! When a write has made no progress for `timeouts.client_write`, the write fails and hyper
//! closes the connection, which drops the body and with it the upstream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A socket whose writes fail after `limit` without progress.
#[derive(Debug)]
pub(crate) struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    /// Made on the first write that has to wait, then re-armed; a client that reads as fast as
    /// the gateway writes never allocates it.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is waiting and `timer` runs for it.
    waiting: bool,
}

impl<T> WriteDeadline<T> {
    pub(crate) fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline { inner, limit, timer: None, waiting: false }
    }

    /// Called when a write could not proceed: starts the deadline, or fails once it passed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.waiting {
            self.waiting = true;
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match &mut self.timer {
            Some(timer) => {
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading (timeouts.client_write_ms)",
                ))
            }
            None => Poll::Pending,
        }
    }

    fn progressed<R>(&mut self, result: R) -> Poll<R> {
        self.waiting = false;
        Poll::Ready(result)
    }
}

impl<T: AsyncWrite + Unpin> WriteDeadline<T> {
    fn guard<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => self.progressed(result),
            Poll::Pending => self.stalled(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guard(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guard(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, AsyncWrite::poll_flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, AsyncWrite::poll_shutdown)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn a_peer_that_never_reads_fails_the_write_after_the_limit() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(ours, Duration::from_millis(200));
        let started = Instant::now();
        let chunk = [0u8; 32];
        let error = loop {
            if let Err(e) = io.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_never_cut() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut io = WriteDeadline::new(ours, Duration::from_millis(300));
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 16];
            while total < 1024 {
                // Each read comes before the deadline, so every wait is shorter than the limit.
                tokio::time::sleep(Duration::from_millis(20)).await;
                total += theirs.read(&mut buf).await.unwrap_or(0);
            }
            total
        });
        let chunk = [1u8; 64];
        for _ in 0..16 {
            io.write_all(&chunk).await.unwrap_or_else(|e| panic!("write failed: {e}"));
        }
        drop(io);
        assert!(reader.await.unwrap_or_default() >= 1024);
    }
}
