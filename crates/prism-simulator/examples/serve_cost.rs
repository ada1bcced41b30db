//! Measures what serving streams costs the simulator: N streams × M chunks with no delay, per
//! wire, the simulator alone on one thread so its CPU time can be read apart from the client's.
//!
//! `cargo run --release -p prism-simulator --example serve_cost -- [streams] [chunks] [concurrency] [flush]`
//! (`flush`: one write per event, [`Reply::flush_each_event`]).

#![expect(clippy::unwrap_used, reason = "a measuring tool fails loudly")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_simulator::{RenderOptions, Reply, SimConfig, Simulator, Wire, render_stream};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// CPU time of the calling thread, from `/proc/thread-self/schedstat` (nanoseconds on CPU).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    Duration::from_nanos(ns)
}

/// CPU time (user + system) of the whole process, from `/proc/self/stat`, at 100 ticks/s.
fn process_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = text.rsplit(')').next().unwrap_or_default();
    let fields: Vec<u64> =
        after_comm.split_whitespace().skip(11).take(2).filter_map(|f| f.parse().ok()).collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

fn path_and_body(wire: Wire) -> (&'static str, &'static str) {
    match wire {
        Wire::OpenAi => ("/v1/chat/completions", r#"{"model":"m","stream":true,"messages":[]}"#),
        Wire::OpenAiResponses => ("/v1/responses", r#"{"model":"m","stream":true,"input":"hi"}"#),
        Wire::Anthropic => ("/v1/messages", r#"{"model":"m","stream":true,"messages":[]}"#),
        Wire::Gemini => ("/v1beta/models/m:streamGenerateContent?alt=sse", r#"{"contents":[]}"#),
        Wire::BedrockConverse => ("/model/m/converse-stream", r#"{"messages":[]}"#),
        _ => ("/model/m/invoke-with-response-stream", r#"{"messages":[]}"#),
    }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let streams = args.first().copied().unwrap_or(1000);
    let chunks = args.get(1).copied().unwrap_or(100);
    let concurrency = args.get(2).copied().unwrap_or(64);
    let flush = std::env::args().any(|a| a == "flush");
    let reply = Reply::with_n_deltas(chunks).flush_each_event(flush);

    // The simulator on its own single-threaded runtime: all of its work runs on this thread.
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (probe_tx, mut probe_rx) = mpsc::channel::<oneshot::Sender<Duration>>(4);
    let sim_reply = reply.clone();
    let sim_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let config = SimConfig::default().with_default(sim_reply).with_history(0);
            let sim = Simulator::start_with(config).await.unwrap();
            url_tx.send(sim.base_url()).unwrap();
            while let Some(reply_to) = probe_rx.recv().await {
                let _ = reply_to.send(thread_cpu());
            }
            sim.shutdown().await;
        });
    });
    let base = url_rx.recv().unwrap();

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let writes = if flush { "one write per event" } else { "events may share writes" };
    println!("{streams} streams x {chunks} chunks, concurrency {concurrency}, no delay, {writes}");
    println!(
        "{:<16} {:>9} {:>10} {:>12} {:>16} {:>16}",
        "wire", "wall ms", "streams/s", "sim CPU ms", "sim ms/1k chunks", "client CPU ms"
    );
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let probe = || async {
            let (tx, rx) = oneshot::channel();
            probe_tx.send(tx).await.unwrap();
            rx.await.unwrap()
        };
        for wire in Wire::ALL {
            let (path, body) = path_and_body(wire);
            let expected = render_stream(wire, &reply, &RenderOptions::new("m")).concat().len();
            let url = format!("{base}{path}");
            let sim_before = probe().await;
            let process_before = process_cpu();
            let started = Instant::now();
            let permits = Arc::new(Semaphore::new(concurrency));
            let mut tasks = Vec::with_capacity(streams);
            for _ in 0..streams {
                let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
                let request = client.post(&url).body(body);
                tasks.push(tokio::spawn(async move {
                    let bytes = request.send().await.unwrap().bytes().await.unwrap();
                    drop(permit);
                    bytes.len()
                }));
            }
            for task in tasks {
                assert_eq!(task.await.unwrap(), expected, "{wire:?}: every stream complete");
            }
            let wall = started.elapsed();
            let sim_cpu = probe().await - sim_before;
            let process = process_cpu().saturating_sub(process_before);
            let total_chunks = (streams * chunks) as f64;
            println!(
                "{:<16} {:>9.0} {:>10.0} {:>12.1} {:>16.3} {:>16.0}",
                format!("{wire:?}"),
                wall.as_secs_f64() * 1e3,
                streams as f64 / wall.as_secs_f64(),
                sim_cpu.as_secs_f64() * 1e3,
                sim_cpu.as_secs_f64() * 1e3 / (total_chunks / 1000.0),
                process.saturating_sub(sim_cpu).as_secs_f64() * 1e3,
            );
        }
    });
    drop(probe_tx);
    sim_thread.join().unwrap();
}
