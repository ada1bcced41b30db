//! `prism-bench`: the end-to-end gateway benchmark behind `cargo xtask bench gateway`. It runs
//! each workload of issue 9 straight against the upstream simulator and through a `prism` child
//! process, checks every answer, and reports the ratio as a table and as JSON.

mod gateway;
mod http;
mod load;
mod procfs;
mod report;
mod sim;
mod soak;
mod soak_check;
mod stats;
mod verify;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::report::Report;
use crate::workloads::{Bench, Durations};

#[derive(Debug, Parser)]
#[command(
    name = "prism-bench",
    about = "End-to-end gateway benchmark: Prism against the physical limit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the workloads and write the report.
    Run(RunArgs),
    /// Soak the gateway: a long mixed, checked load; fails on lost chunks, unexpected errors,
    /// memory growth and descriptor or connection leaks.
    Soak(soak::SoakArgs),
    /// Serve the soak's simulated upstreams (started by `soak`; talks over stdin/stdout).
    #[command(hide = true)]
    SoakSim(soak::SoakSimArgs),
    /// Serve as the simulated upstream (started by `run`; talks over stdin/stdout).
    #[command(hide = true)]
    Sim(sim::SimSpec),
    /// Serve as a byte-copying TCP proxy to `--to` (started by `run` for W1's floor).
    #[command(hide = true)]
    Proxy {
        #[arg(long)]
        to: std::net::SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The `prism` binary to measure (a release build).
    #[arg(long, default_value = "target/release/prism")]
    prism: PathBuf,
    /// Where the JSON results and the gateway logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Short windows for development (W4 5 s instead of 30 s, 2 s closed loops, 8 W1 pairs);
    /// the full run is the one that counts.
    #[arg(long)]
    quick: bool,
    /// Run only these workloads (comma-separated: w1, w2, w2f, w6, w7, wt, w4-1k, w4-10k; w2
    /// includes W3 and W5; w6 is W2's load through the Messages and Responses ingresses, w7 with
    /// guardrails off and on, wt with telemetry off and on).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Record a `perf` profile of the gateway during the Prism side of W2, W3 and W5 (into
    /// `<out>/perf-<workload>.data`); the CPU numbers of a profiled run include perf's cost.
    #[arg(long)]
    perf: bool,
    /// Run the gateway under this command, split at spaces (a profiling aid, e.g.
    /// `--gateway-wrapper "heaptrack -o target/bench/heap"`); its numbers are then not Prism's.
    #[arg(long)]
    gateway_wrapper: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Soak(args) => soak::soak(args),
        Command::SoakSim(args) => soak::serve_sims(args),
        Command::Sim(spec) => sim::serve(spec),
        Command::Proxy { to } => sim::serve_proxy(to),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prism-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let fd_limit = procfs::raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    runtime.block_on(run_all(args, fd_limit))
}

async fn run_all(args: RunArgs, fd_limit: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    anyhow::ensure!(
        args.prism.is_file(),
        "{} not found: build it with `cargo build --release -p prism` (or run `cargo xtask bench gateway`)",
        args.prism.display()
    );
    let machine = procfs::machine(fd_limit);
    let nanos = started_at.duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let mut bench = Bench {
        exe: std::env::current_exe().context("locating prism-bench")?,
        prism: args.prism.canonicalize().unwrap_or_else(|_| args.prism.clone()),
        out: args.out.clone(),
        durations: Durations::new(args.quick),
        key: format!("sk-prism-bench-{:08x}{:08x}", std::process::id(), nanos),
        fd_limit,
        perf: args.perf,
        wrapper: args
            .gateway_wrapper
            .as_deref()
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        report: Report::default(),
    };
    eprintln!(
        "prism-bench: {} on {} × {} ({} GiB), load {}, open-file limit {}{}",
        bench.prism.display(),
        machine.cpus,
        machine.cpu_model,
        machine.memory_gib,
        machine.load_average_at_start,
        fd_limit,
        if args.quick { ", QUICK mode (development numbers only)" } else { "" }
    );
    let wants =
        |name: &str| args.only.is_empty() || args.only.iter().any(|o| o.eq_ignore_ascii_case(name));
    if wants("w1") {
        bench.w1().await?;
    }
    if wants("w2") {
        bench.w2_w3(false).await?;
    }
    if wants("w2f") {
        bench.w2_w3(true).await?;
    }
    if wants("w6") {
        bench.w6().await?;
    }
    if wants("w7") {
        bench.w7().await?;
    }
    if wants("wt") {
        bench.wt().await?;
    }
    if wants("w4-1k") {
        bench.w4(1_000).await?;
    }
    if wants("w4-10k") {
        bench.w4(10_000).await?;
    }

    let table = bench.report.table();
    println!();
    println!("{table}");
    let missed: Vec<&str> =
        bench.report.targets.iter().filter(|t| !t.met).map(|t| t.target.as_str()).collect();
    if missed.is_empty() {
        println!("All {} targets met.", bench.report.targets.len());
    } else {
        println!("Targets missed ({} of {}):", missed.len(), bench.report.targets.len());
        for m in &missed {
            println!("  - {m}");
        }
    }
    for note in &bench.report.notes {
        println!("Note: {note}");
    }
    let head = json!({
        "schema": 1,
        "started_at": report::timestamp(started_at),
        "duration_s": started.elapsed().as_secs_f64(),
        "quick": args.quick,
        "prism": bench.prism.display().to_string(),
        "machine": machine,
        "load_average_at_end": procfs::load_average(),
    });
    let serde_json::Value::Object(head) = head else {
        anyhow::bail!("report head is not an object")
    };
    let path = bench.report.write_json(&args.out, head)?;
    println!(
        "Results: {} (and gateway-latest.json); {:.0} s in all.",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
