//! The response body: pre-rendered events served one frame each, paced by an optional delay,
//! ending cleanly, by aborting the connection, or by going silent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The pause before a [`Tail::Abort`] fails the body.
const ABORT_GRACE: Duration = Duration::from_millis(5);

/// What happens after the last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// End the body cleanly.
    End,
    /// Fail the body, which makes hyper drop the connection mid-body.
    Abort,
    /// Never yield again (until the connection goes away).
    Stall,
}

/// How a body's events are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pacing {
    /// Before the first event.
    pub(crate) first: Duration,
    /// Before each later event.
    pub(crate) between: Duration,
    /// Hand each event to the socket on its own even without delays.
    pub(crate) flush_each: bool,
}

impl Pacing {
    /// No delays; events may share writes.
    pub(crate) const NONE: Pacing =
        Pacing { first: Duration::ZERO, between: Duration::ZERO, flush_each: false };

    /// The pacing a reply asks for.
    pub(crate) fn of(reply: &crate::Reply) -> Pacing {
        Pacing {
            first: reply.first_delay,
            between: reply.delay,
            flush_each: reply.flush_each_event,
        }
    }

    /// The same delay before every event but the first.
    pub(crate) fn between(delay: Duration) -> Pacing {
        Pacing { between: delay, ..Pacing::NONE }
    }
}

/// A response body. Events are shared [`Bytes`] (a refcount bump each, no copy).
#[derive(Debug)]
pub(crate) struct SimBody {
    events: Arc<[Bytes]>,
    next: usize,
    end: usize,
    tail: Tail,
    pacing: Pacing,
    /// Return `Pending` once before the next event, so hyper flushes the previous one alone.
    yield_next: bool,
    /// Reused for every delay of this body: one allocation per paced stream.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The sleep before event `next` has been armed.
    armed: bool,
}

impl SimBody {
    /// Events `events[..end]`, then `tail`, spaced by `pacing`.
    pub(crate) fn events(events: Arc<[Bytes]>, end: usize, tail: Tail, pacing: Pacing) -> Self {
        let end = end.min(events.len());
        Self { events, next: 0, end, tail, pacing, yield_next: false, sleep: None, armed: false }
    }

    /// One whole body, sent at once (with a `content-length`).
    pub(crate) fn full(body: Bytes) -> Self {
        Self::events(Arc::from([body]), 1, Tail::End, Pacing::NONE)
    }

    fn is_single_full(&self) -> bool {
        self.end == 1
            && self.events.len() == 1
            && self.tail == Tail::End
            && self.pacing == Pacing::NONE
    }
}

impl http_body::Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let wait = if this.next >= this.end {
            match this.tail {
                Tail::End => return Poll::Ready(None),
                Tail::Stall => return Poll::Pending,
                // hyper drops what it has buffered when a body fails, so give it a moment to
                // flush the events already produced: the cut then comes after them on the wire.
                Tail::Abort => ABORT_GRACE,
            }
        } else if this.next == 0 {
            this.pacing.first
        } else {
            this.pacing.between
        };
        if !wait.is_zero() {
            if !this.armed {
                let deadline = Instant::now() + wait;
                match &mut this.sleep {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                this.armed = true;
            }
            if let Some(sleep) = &mut this.sleep
                && sleep.as_mut().poll(cx).is_pending()
            {
                return Poll::Pending;
            }
            this.armed = false;
        }
        if this.next >= this.end {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "simulated upstream cut",
            ))));
        }
        if this.yield_next {
            // hyper flushes its write buffer whenever the body is not ready.
            this.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let event = this.events.get(this.next).cloned().unwrap_or_default();
        this.next += 1;
        this.yield_next = this.pacing.flush_each && this.next < this.end;
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.end && self.tail == Tail::End
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_single_full() && self.next == 0 {
            return SizeHint::with_exact(self.events.first().map_or(0, |b| b.len() as u64));
        }
        if self.end == 0 && self.tail == Tail::End {
            return SizeHint::with_exact(0);
        }
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    fn events(n: usize) -> Arc<[Bytes]> {
        (0..n).map(|i| Bytes::from(format!("e{i};"))).collect()
    }

    #[tokio::test]
    async fn yields_events_then_ends() {
        let body = SimBody::events(events(3), 3, Tail::End, Pacing::NONE);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "e0;e1;e2;");
    }

    #[tokio::test]
    async fn stops_at_end_then_aborts() {
        let mut body =
            SimBody::events(events(5), 2, Tail::Abort, Pacing { flush_each: true, ..Pacing::NONE });
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "e0;");
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "e1;");
        assert!(body.frame().await.unwrap().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn paces_events() {
        let start = Instant::now();
        let pacing = Pacing {
            first: Duration::from_millis(100),
            between: Duration::from_millis(20),
            flush_each: false,
        };
        let body = SimBody::events(events(3), 3, Tail::End, pacing);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "e0;e1;e2;");
        assert_eq!(start.elapsed(), Duration::from_millis(140));
    }

    #[test]
    fn flush_each_event_yields_between_events() {
        let pacing = Pacing { flush_each: true, ..Pacing::NONE };
        let mut body = SimBody::events(events(2), 2, Tail::End, pacing);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut poll = || match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => Some(frame.into_data().unwrap()),
            Poll::Ready(None) => Some(Bytes::from_static(b"end")),
            Poll::Ready(Some(Err(_))) => Some(Bytes::from_static(b"error")),
            Poll::Pending => None,
        };
        assert_eq!(poll(), Some(Bytes::from_static(b"e0;")));
        assert_eq!(poll(), None, "not ready: hyper flushes e0 alone");
        assert_eq!(poll(), Some(Bytes::from_static(b"e1;")));
        assert_eq!(poll(), Some(Bytes::from_static(b"end")), "no yield after the last event");
    }

    #[test]
    fn full_bodies_have_exact_length() {
        assert_eq!(SimBody::full(Bytes::from_static(b"abc")).size_hint().exact(), Some(3));
    }
}
