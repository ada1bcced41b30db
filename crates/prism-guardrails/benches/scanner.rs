//! Scanner cost per chunk early and late in a long stream (it must be flat), and what hold-back
//! adds per chunk. Realistic assistant text in 20-character deltas, all PII and secrets detectors.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use prism_guardrails::{
    Channel, GuardrailSet, Mode, OutputScanner, PiiType, RuleConfig, RuleKind, SecretType,
};

/// Assistant-style prose, markdown and code with near misses (versions, dates, prices, times,
/// hex, short numbers, hyphenated words) but nothing that violates.
const CORPUS: &str = "Sure! Here's a summary of the Q3 report. Revenue grew 12.5% year-over-year to \
$4.2 million, driven by the new self-serve plan (launched 2024-03-15). Version 2.3.1 fixed the \
retry bug; see section 4.2 and the changelog at https://docs.example.org/guide#install for \
details. Support hours are 09:00-17:30 CET, Monday to Friday. The ratio of active to trial \
accounts is 3:2, and churn fell from 4.1% to 3.7%.\n\n```rust\nfn main() {\n    let xs = vec![1, \
2, 3];\n    println!(\"{:?}\", xs.iter().sum::<i32>());\n}\n```\n\nError 0x1F4 at line 42 means \
the upstream timed out; raise `timeout_ms` to 30000. Temperatures ranged from -3 to 17 degrees. \
Order #48213 ships in 3-5 business days. The scikit-learn (sklearn) model uses 128 features and \
a learning rate of 1e-3. Use std::io::Read for streaming input; the IPv4 and IPv6 stacks are \
both enabled by default. Thanks for asking - let me know if you need anything else!\n\n";

const DELTA: usize = 20;

fn stream_text(chunks: usize) -> String {
    let mut text = String::with_capacity(chunks * DELTA + CORPUS.len());
    while text.len() < chunks * DELTA {
        text.push_str(CORPUS);
    }
    text
}

fn delta(text: &str, i: usize) -> &str {
    &text[i * DELTA..(i + 1) * DELTA]
}

fn rules(hold_back: bool) -> GuardrailSet {
    let set = GuardrailSet::new(&[
        RuleConfig::new("pii", Mode::Enforce, RuleKind::pii(PiiType::ALL))
            .with_hold_back(hold_back),
        RuleConfig::new("secrets", Mode::Enforce, RuleKind::secrets(SecretType::ALL))
            .with_hold_back(hold_back),
    ]);
    set.unwrap_or_else(|e| panic!("{e}"))
}

/// A scanner that has already consumed `chunks` deltas of `text`.
fn warmed(set: &GuardrailSet, text: &str, chunks: usize) -> OutputScanner {
    let mut scanner = OutputScanner::new(set);
    for i in 0..chunks {
        let out = scanner.scan_delta(0, Channel::Content, delta(text, i));
        assert!(out.verdict.is_pass(), "bench text must not violate: {:?}", out.verdict);
    }
    scanner
}

/// Deltas measured per iteration, so one iteration is long enough to time precisely.
const BATCH: usize = 50;

fn feed_batch(mut scanner: OutputScanner, text: &str, from: usize) -> (OutputScanner, usize) {
    let mut released = 0;
    for i in from..from + BATCH {
        released += scanner.scan_delta(0, Channel::Content, delta(text, i)).release.len();
    }
    (scanner, released)
}

fn per_chunk(c: &mut Criterion) {
    let text = stream_text(100_000 + 2 * BATCH);
    let set = rules(false);
    let mut group = c.benchmark_group("per_chunk");
    group.throughput(Throughput::Elements(BATCH as u64));
    for at in [100usize, 100_000] {
        let scanner = warmed(&set, &text, at);
        group.bench_function(format!("at_chunk_{at}"), |b| {
            b.iter_batched(
                || scanner.clone(),
                |s| feed_batch(s, black_box(&text), at),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn hold_back(c: &mut Criterion) {
    let text = stream_text(100 + 2 * BATCH);
    let mut group = c.benchmark_group("hold_back");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, on) in [("off", false), ("on", true)] {
        let scanner = warmed(&rules(on), &text, 100);
        group.bench_function(name, |b| {
            b.iter_batched(
                || scanner.clone(),
                |s| feed_batch(s, black_box(&text), 100),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Plain wall-clock summary over long runs, printed as a table for the docs.
fn summary(_c: &mut Criterion) {
    const RUN: usize = 20_000;
    const ROUNDS: usize = 7;
    let text = stream_text(100_000 + RUN);
    let plain = rules(false);
    let held = rules(true);
    let secrets_only = GuardrailSet::new(&[RuleConfig::new(
        "secrets",
        Mode::Enforce,
        RuleKind::secrets(SecretType::ALL),
    )
    .with_hold_back(true)])
    .unwrap_or_else(|e| panic!("{e}"));

    // Warm scanners once; each round times RUN further deltas on a fresh clone. The three
    // configurations are interleaved so load from other processes hits them alike.
    let configs = [(&plain, 100), (&plain, 100_000), (&held, 100)];
    let warm: Vec<OutputScanner> =
        configs.iter().map(|(set, at)| warmed(set, &text, *at)).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for _ in 0..ROUNDS {
        for (k, (_, at)) in configs.iter().enumerate() {
            let mut scanner = warm[k].clone();
            let start = Instant::now();
            for i in *at..*at + RUN {
                let out = scanner.scan_delta(0, Channel::Content, black_box(delta(&text, i)));
                black_box(out.release);
            }
            times[k].push(start.elapsed().as_nanos() as f64 / RUN as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let early = median(&mut times[0]);
    let late = median(&mut times[1]);
    let early_held = median(&mut times[2]);

    // Text withheld by hold-back after each delta, in characters: (mean, max, % of deltas).
    let withheld = |set: &GuardrailSet| {
        let mut scanner = OutputScanner::new(set);
        let (mut fed, mut released, mut total, mut max, mut holding) = (0, 0, 0, 0, 0);
        for i in 0..RUN {
            fed += DELTA;
            released += scanner.scan_delta(0, Channel::Content, delta(&text, i)).release.len();
            let now = fed - released;
            total += now;
            max = max.max(now);
            holding += usize::from(now > 0);
        }
        (total as f64 / RUN as f64, max, 100.0 * holding as f64 / RUN as f64)
    };
    let (all_mean, all_max, all_pct) = withheld(&held);
    let (sec_mean, sec_max, sec_pct) = withheld(&secrets_only);

    println!(
        "\nscanner summary ({DELTA}-char deltas, all PII + secrets detectors, \
         median of {ROUNDS} x {RUN} chunks)"
    );
    println!("  per chunk at chunk 100:      {early:8.0} ns");
    println!("  per chunk at chunk 100,000:  {late:8.0} ns   (ratio {:.2})", late / early);
    println!(
        "  hold_back on, at chunk 100:  {early_held:8.0} ns   ({:+.0} ns per chunk)",
        early_held - early
    );
    println!(
        "  withheld after a delta, PII + secrets: mean {all_mean:.1} chars, max {all_max}, \
         non-zero after {all_pct:.0}% of deltas"
    );
    println!(
        "  withheld after a delta, secrets only:  mean {sec_mean:.1} chars, max {sec_max}, \
         non-zero after {sec_pct:.0}% of deltas"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = per_chunk, hold_back, summary
}
criterion_main!(benches);
