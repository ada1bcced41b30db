//! The sliding-window counter behind requests-per-minute and tokens-per-minute limits.
//!
//! Time is cut into fixed windows of `window_ms`; each keeps one count. The load "in the last
//! window" at a moment `elapsed` ms into the current window is the current count plus the
//! previous window's count weighted by the part of it still inside the sliding window:
//!
//! ```text
//! load = cur + prev * (window_ms - elapsed) / window_ms      (integer division, rounded down)
//! ```
//!
//! This is Cloudflare's approximation: two integers per limit instead of a log of events, and a
//! burst at a window boundary cannot double the limit as a fixed window lets it. An admission of
//! `amount` is allowed when `load + amount <= limit` and then adds `amount` to `cur`; the check
//! and the add are one atomic step (a mutex in memory, one Lua script in Redis, whose script is
//! this same arithmetic), so concurrent admissions never overshoot the limit between them.
//! Settling a reservation adds `actual - reserved` to the window it was counted in, so a stream
//! that used less than it reserved frees the difference.
//!
//! Everything here is pure: times are inputs.

/// One limit's two windows, as read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Index of the current window (`now_ms / window_ms`).
    pub index: u64,
    /// Count in the current window.
    pub current: u64,
    /// Count in the previous window (`index - 1`).
    pub previous: u64,
}

impl Window {
    /// The sliding load at `now_ms`. `self.index` must be `now_ms / window_ms`.
    pub fn load(&self, now_ms: u64, window_ms: u64) -> u64 {
        let elapsed = now_ms % window_ms;
        self.current + weighted(self.previous, window_ms - elapsed, window_ms)
    }

    /// Whether `amount` more fits under `limit` at `now_ms`.
    pub fn admits(&self, amount: u64, limit: u64, now_ms: u64, window_ms: u64) -> bool {
        self.load(now_ms, window_ms).saturating_add(amount) <= limit
    }

    /// How long until `amount` fits under `limit`, assuming nothing else arrives: the current
    /// window's count stays, the previous one slides out, and at the next boundary the current
    /// becomes the previous. `None` when `amount` can never fit (it exceeds the limit itself).
    pub fn wait_ms(&self, amount: u64, limit: u64, now_ms: u64, window_ms: u64) -> Option<u64> {
        if amount > limit {
            return None;
        }
        if self.admits(amount, limit, now_ms, window_ms) {
            return Some(0);
        }
        let elapsed = now_ms % window_ms;
        let to_boundary = window_ms - elapsed;
        // Within this window: the weight of `previous` falls as the window slides.
        if self.current + amount <= limit {
            let room = limit - self.current - amount;
            // Wait until at most `r` ms of the previous window remain inside the sliding one.
            let r = largest_remaining(self.previous, room, window_ms);
            return Some(to_boundary - r.min(to_boundary));
        }
        // After the boundary the current count becomes the previous one and slides out.
        let room = limit - amount;
        let r = largest_remaining(self.current, room, window_ms);
        Some(to_boundary + (window_ms - r.min(window_ms)))
    }

    /// Rolls the window forward to `index` (what a store does when it reads at a later time).
    pub fn roll_to(&mut self, index: u64) {
        if index == self.index {
            return;
        }
        self.previous = if index == self.index + 1 { self.current } else { 0 };
        self.current = 0;
        self.index = index;
    }

    /// Applies a settlement of `delta` to the window `at_index`, clamping at zero. A window
    /// that already slid out is left alone: it no longer counts.
    pub fn settle(&mut self, at_index: u64, delta: i64) {
        let slot = if at_index == self.index {
            &mut self.current
        } else if at_index + 1 == self.index {
            &mut self.previous
        } else {
            return;
        };
        *slot = slot.saturating_add_signed(delta);
    }
}

/// `count * remaining / window`, rounded down, without overflow.
fn weighted(count: u64, remaining: u64, window: u64) -> u64 {
    u64::try_from(u128::from(count) * u128::from(remaining) / u128::from(window))
        .unwrap_or(u64::MAX)
}

/// The largest `r` in `0..=window` with `weighted(count, r, window) <= room`: how many ms of
/// the previous window may still be inside the sliding one.
fn largest_remaining(count: u64, room: u64, window: u64) -> u64 {
    if count == 0 {
        return window;
    }
    // weighted <= room  <=>  count * r < (room + 1) * window; the largest such r, clamped.
    let bound = (u128::from(room) + 1) * u128::from(window);
    let r = (bound - 1) / u128::from(count);
    u64::try_from(r.min(u128::from(window))).unwrap_or(window)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const W: u64 = 60_000;

    #[test]
    fn the_previous_window_slides_out_linearly() {
        let w = Window { index: 1, current: 10, previous: 100 };
        assert_eq!(w.load(W, W), 110);
        assert_eq!(w.load(W + W / 2, W), 60);
        assert_eq!(w.load(2 * W - 1, W), 10);
    }

    #[test]
    fn waits_until_the_amount_fits() {
        // At the start of window 1: 100 previous, 0 current, limit 100: 50 fits once about half
        // of the previous window slid out (the weighted count rounds down).
        let w = Window { index: 1, current: 0, previous: 100 };
        let wait = w.wait_ms(50, 100, W, W).unwrap();
        assert_eq!(wait, 29_401);
        assert!(w.admits(50, 100, W + wait, W));
        assert!(!w.admits(50, 100, W + wait - 1, W));
        // The current window is full: it must slide out too.
        let w = Window { index: 1, current: 100, previous: 0 };
        let wait = w.wait_ms(50, 100, W, W).unwrap();
        let mut later = w;
        later.roll_to((W + wait) / W);
        assert!(later.admits(50, 100, W + wait, W), "wait {wait}");
        // Larger than the limit: never.
        assert_eq!(w.wait_ms(101, 100, W, W), None);
    }

    #[test]
    fn settling_returns_unused_reservation() {
        let mut w = Window { index: 3, current: 500, previous: 0 };
        w.settle(3, -400);
        assert_eq!(w.current, 100);
        w.roll_to(4);
        w.settle(3, 50);
        assert_eq!(w.previous, 150);
        w.settle(1, 1_000);
        assert_eq!((w.current, w.previous), (0, 150));
        w.settle(4, -10);
        assert_eq!(w.current, 0, "clamped at zero");
    }

    /// One admission attempt or settlement at a time offset.
    #[derive(Debug, Clone)]
    enum Op {
        Admit { at: u64, reserve: u64, actual: u64 },
        Tick(u64),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            (0..2_000u64, 1..400u64, 0..400u64).prop_map(|(at, reserve, actual)| Op::Admit {
                at,
                reserve,
                actual
            }),
            (0..20_000u64).prop_map(Op::Tick),
        ];
        prop::collection::vec(op, 1..200)
    }

    proptest! {
        /// Reservations are checked and added atomically, so whatever order admissions and
        /// settlements come in, the load never exceeds the limit by more than what settlements
        /// added beyond their reservations — at most one request's overrun each, and zero when
        /// no request uses more than it reserved.
        #[test]
        fn admissions_never_overshoot_the_limit(
            ops in ops(),
            limit in 100..2_000u64,
            settle_late in any::<bool>(),
        ) {
            let mut now = 0u64;
            let mut w = Window::default();
            let mut open: Vec<(u64, u64, u64)> = Vec::new(); // (index, reserved, actual)
            let mut overrun_allowance = 0u64;
            for op in ops {
                match op {
                    Op::Tick(ms) => now += ms,
                    Op::Admit { at, reserve, actual } => {
                        now += at;
                        w.roll_to(now / W);
                        if w.admits(reserve, limit, now, W) {
                            w.current += reserve;
                            prop_assert!(w.load(now, W) <= limit);
                            open.push((w.index, reserve, actual));
                        } else if let Some(wait) = w.wait_ms(reserve, limit, now, W) {
                            // The advertised wait is enough on its own.
                            let mut later = w;
                            later.roll_to((now + wait) / W);
                            prop_assert!(later.admits(reserve, limit, now + wait, W));
                        } else {
                            prop_assert!(reserve > limit);
                        }
                        // Settle the oldest open request (or all, late).
                        let settle_n = if settle_late { usize::from(open.len() > 8) } else { open.len() };
                        for (index, reserved, actual) in open.drain(..settle_n.min(open.len())) {
                            overrun_allowance += actual.saturating_sub(reserved);
                            w.settle(index, actual as i64 - reserved as i64);
                        }
                    }
                }
                w.roll_to(now / W);
                prop_assert!(
                    w.load(now, W) <= limit + overrun_allowance,
                    "load {} limit {limit} allowance {overrun_allowance}", w.load(now, W)
                );
            }
        }
    }
}
