//! Percentiles and CPU accounting for one measured interval.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::procfs;

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
}

/// Nearest-rank percentiles (p99 of 50 samples is the largest one).
pub(crate) fn summarize(samples: &mut [Duration]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |p: f64| {
        let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        ms(samples[rank.clamp(1, samples.len()) - 1])
    };
    let total: Duration = samples.iter().sum();
    Summary {
        n: samples.len(),
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        max_ms: ms(samples[samples.len() - 1]),
        mean_ms: ms(total) / samples.len() as f64,
    }
}

/// The processes whose CPU time a measurement reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meters {
    pub(crate) gateway: Option<u32>,
    pub(crate) sim: u32,
}

/// CPU times at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    at: Instant,
    gateway: Duration,
    sim: Duration,
    client: Duration,
    system: (u64, u64),
}

impl Meters {
    pub(crate) fn snapshot(&self) -> Snapshot {
        let cpu = |pid: u32| procfs::cpu_time(pid).unwrap_or_default();
        Snapshot {
            at: Instant::now(),
            gateway: self.gateway.map(cpu).unwrap_or_default(),
            sim: cpu(self.sim),
            client: cpu(std::process::id()),
            system: procfs::system_ticks(),
        }
    }
}

/// CPU used over an interval, in milliseconds (from `/proc/<pid>/stat`, clock-tick resolution).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Usage {
    pub(crate) wall_ms: f64,
    pub(crate) gateway_cpu_ms: f64,
    pub(crate) sim_cpu_ms: f64,
    pub(crate) client_cpu_ms: f64,
    /// Busy CPU of everything else on the machine (other builds and tests): the noise.
    pub(crate) others_cpu_ms: f64,
}

impl Usage {
    pub(crate) fn between(a: &Snapshot, b: &Snapshot) -> Usage {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let gateway = b.gateway.saturating_sub(a.gateway);
        let sim = b.sim.saturating_sub(a.sim);
        let client = b.client.saturating_sub(a.client);
        let busy = procfs::busy_between(a.system, b.system);
        Usage {
            wall_ms: ms(b.at.duration_since(a.at)),
            gateway_cpu_ms: ms(gateway),
            sim_cpu_ms: ms(sim),
            client_cpu_ms: ms(client),
            others_cpu_ms: ms(busy.saturating_sub(gateway + sim + client)),
        }
    }

    /// Average cores busy with something else during the interval.
    pub(crate) fn others_cores(&self) -> f64 {
        if self.wall_ms > 0.0 { self.others_cpu_ms / self.wall_ms } else { 0.0 }
    }
}

/// Milliseconds of CPU per 1,000 chunks.
pub(crate) fn per_1k(cpu_ms: f64, chunks: u64) -> f64 {
    if chunks == 0 { f64::NAN } else { cpu_ms / (chunks as f64 / 1000.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = summarize(&mut samples);
        assert_eq!((s.n, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms), (100, 50.0, 90.0, 99.0, 100.0));
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        let mut few: Vec<Duration> = (1..=50).map(Duration::from_millis).collect();
        assert_eq!(summarize(&mut few).p99_ms, 50.0);
        assert_eq!(summarize(&mut []).n, 0);
    }

    #[test]
    fn per_thousand_chunks() {
        assert_eq!(per_1k(25.0, 10_000), 2.5);
        assert!(per_1k(1.0, 0).is_nan());
    }
}
