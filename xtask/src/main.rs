//! `cargo xtask`: the project's test, bench and fuzz harness, so CI and local runs are identical.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Prism project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// fmt --check, clippy -D warnings, then every test with snapshots checked (INSTA_UPDATE=no).
    Test {
        /// Skip fmt and clippy (tests only).
        #[arg(long)]
        no_lint: bool,
    },
    /// Run the benchmarks: without arguments the criterion micro-benchmarks (or those matching
    /// FILTER); `gateway` runs the end-to-end harness (prism-bench) against the release binary.
    Bench {
        /// `gateway` for the end-to-end benchmark; anything else filters the micro-benchmarks.
        filter: Option<String>,
        /// With `gateway`: short windows for development (the full run is the one that counts).
        #[arg(long)]
        quick: bool,
        /// With `gateway`: only these workloads (w1, w2, w2f, w4-1k, w4-10k; w2 includes W3 and W5).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Run a cargo-fuzz target for a bounded time (needs the nightly toolchain).
    Fuzz {
        /// Fuzz target: `sse`, `eventstream`, or `all`.
        target: String,
        /// How long to run each target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

/// The crates published to crates.io (`publish = true`); the rest of the workspace is not.
const PUBLISHED_CRATES: [&str; 4] = ["prism-sse", "prism-types", "prism-providers", "prism-client"];

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.cmd {
        Cmd::Test { no_lint } => test(&root, no_lint),
        Cmd::Bench { filter, quick, only } => match filter.as_deref() {
            Some("gateway") => bench_gateway(&root, quick, &only),
            other => {
                if quick || !only.is_empty() {
                    bail!("--quick and --only apply to `cargo xtask bench gateway` only");
                }
                bench(&root, other)
            }
        },
        Cmd::Fuzz { target, seconds } => fuzz(&root, &target, seconds),
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd.status().with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn test(root: &Path, no_lint: bool) -> Result<()> {
    if !no_lint {
        let mut fmt = cargo();
        fmt.current_dir(root).args(["fmt", "--all", "--", "--check"]);
        run(fmt, "cargo fmt --check")?;
        let mut clippy = cargo();
        clippy.current_dir(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]);
        run(clippy, "cargo clippy -D warnings")?;
    }
    report_optional_tools();
    let mut tests = cargo();
    tests.current_dir(root).env("INSTA_UPDATE", "no").env("CI", "true");
    if has_nextest() {
        tests.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
    }
    run(tests, "workspace tests")?;
    // The real OpenAI Python SDK against a running gateway (skipped loudly without the package).
    let mut sdk = Command::new("bash");
    sdk.current_dir(root).arg("tests/sdk/run.sh");
    run(sdk, "OpenAI Python SDK tier")?;
    // The TypeScript client SDK against a running gateway.
    let mut ts = Command::new("bash");
    ts.current_dir(root).arg("clients/typescript/run-tests.sh");
    run(ts, "TypeScript client tier")?;
    // The Python client against a running gateway (mypy --strict, pytest).
    let mut py = Command::new("bash");
    py.current_dir(root).arg("clients/python/run-tests.sh");
    run(py, "Python client tier")?;
    // Claude Code and Codex as clients (skipped loudly without tests/agents/node_modules).
    let mut agents = Command::new("bash");
    agents.current_dir(root).arg("tests/agents/run.sh");
    run(agents, "agent tier")?;
    // nextest does not run doctests.
    if has_nextest() {
        let mut doc = cargo();
        doc.current_dir(root).env("INSTA_UPDATE", "no").args([
            "test",
            "--workspace",
            "--locked",
            "--doc",
        ]);
        run(doc, "doctests")?;
    }
    // The crates a Rust user imports stay publishable: packaged together (each verified against
    // the others' packages), nothing uploaded. Dirty is allowed so a working tree can be checked.
    let mut package = cargo();
    package.current_dir(root).args(["package", "--locked", "--allow-dirty"]);
    for name in PUBLISHED_CRATES {
        package.args(["-p", name]);
    }
    run(package, "cargo package (published crates)")?;
    Ok(())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Says loudly which test tiers cannot run on this machine, so a skip is never silent.
fn report_optional_tools() {
    if which("redis-server").is_none() {
        eprintln!("xtask: WARNING: redis-server not found; the Redis cache tests will be SKIPPED");
    }
    let has_openai_sdk = Command::new("python3")
        .args(["-c", "import openai"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_openai_sdk {
        eprintln!(
            "xtask: WARNING: python3 `openai` package not found; the SDK tier will be SKIPPED"
        );
    }
    if std::path::Path::new("../shared/reference-streams").exists() {
        eprintln!("xtask: ../shared/reference-streams found; reference replays will run");
    } else {
        eprintln!("xtask: note: ../shared/reference-streams absent; reference replays skipped");
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(bin)).find(|p| p.is_file())
}

fn bench(root: &Path, filter: Option<&str>) -> Result<()> {
    let mut cmd = cargo();
    cmd.current_dir(root).args(["bench", "--workspace", "--locked"]);
    if let Some(filter) = filter {
        cmd.args(["--", filter]);
    }
    run(cmd, "criterion benchmarks")
}

/// `cargo xtask bench gateway`: builds `prism` and `prism-bench` in release, then runs every
/// workload direct and through the gateway; results go to `target/bench/gateway-*.json`.
fn bench_gateway(root: &Path, quick: bool, only: &[String]) -> Result<()> {
    let mut build = cargo();
    build.current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "prism",
        "-p",
        "prism-bench",
    ]);
    run(build, "cargo build --release -p prism -p prism-bench")?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let target = if target.is_absolute() { target } else { root.join(target) };
    let mut cmd = Command::new(target.join("release").join("prism-bench"));
    cmd.current_dir(root)
        .arg("run")
        .arg("--prism")
        .arg(target.join("release").join("prism"))
        .arg("--out")
        .arg(target.join("bench"));
    if quick {
        cmd.arg("--quick");
    }
    if !only.is_empty() {
        cmd.arg("--only").arg(only.join(","));
    }
    run(cmd, "gateway benchmark (prism-bench)")
}

fn fuzz(root: &Path, target: &str, seconds: u64) -> Result<()> {
    let targets: Vec<&str> = match target {
        "all" => vec!["sse", "eventstream"],
        one => vec![one],
    };
    for t in targets {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root.join("fuzz")).args([
            "+nightly",
            "fuzz",
            "run",
            t,
            "--",
            &format!("-max_total_time={seconds}"),
        ]);
        run(cmd, &format!("fuzz target {t} for {seconds}s"))?;
    }
    Ok(())
}
