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
    /// Soak the gateway: `prism-bench soak` on the release build (mixed traffic, faults and
    /// disconnects, every chunk checked, RSS, descriptors and upstream connections sampled).
    Soak {
        /// How long the load runs.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Concurrent client streams.
        #[arg(long, default_value_t = 500)]
        concurrency: u32,
        /// Largest RSS growth after the warm-up, in percent.
        #[arg(long, default_value_t = 5.0)]
        max_rss_growth_pct: f64,
    },
    /// Seed the corpora from the fixtures and example configs, then run cargo-fuzz targets for a
    /// bounded time each, one after another (needs the nightly toolchain and cargo-fuzz).
    Fuzz {
        /// Fuzz target (`sse`, `eventstream`, `openai_chat`, `openai_responses`, `anthropic`,
        /// `gemini`, `requests`, `config`), or `all`.
        target: String,
        /// How long to run each target.
        #[arg(long, visible_alias = "secs", default_value_t = 60)]
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
        Cmd::Soak { minutes, concurrency, max_rss_growth_pct } => {
            soak(&root, Profile::Release, minutes, concurrency, max_rss_growth_pct)
        }
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
    fuzz_briefly(root)?;
    // One minute of the soak on the debug build: a leak of descriptors, upstream connections or
    // chunks fails it; RSS gets a looser bound than the long run's 5%, since a debug process at
    // this load is still warming its allocator in its first minute.
    soak(root, Profile::Debug, 1.0, 50, 10.0)?;
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
    // Verifying builds each packaged crate outside the workspace, so the workspace's profile does
    // not apply: without these it rebuilds every dependency with full debug info, which filled a
    // CI machine's disk.
    let mut package = cargo();
    package
        .current_dir(root)
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .env("CARGO_INCREMENTAL", "0")
        .args(["package", "--locked", "--allow-dirty"]);
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

#[derive(Clone, Copy)]
enum Profile {
    Debug,
    Release,
}

/// `prism-bench soak` against the `prism` binary of `profile`, both built first.
fn soak(
    root: &Path,
    profile: Profile,
    minutes: f64,
    concurrency: u32,
    max_rss_growth_pct: f64,
) -> Result<()> {
    let mut build = cargo();
    build.current_dir(root).args(["build", "--locked", "-p", "prism", "-p", "prism-bench"]);
    let dir = match profile {
        Profile::Debug => "debug",
        Profile::Release => {
            build.arg("--release");
            "release"
        }
    };
    run(build, &format!("cargo build ({dir}) -p prism -p prism-bench"))?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let target = if target.is_absolute() { target } else { root.join(target) };
    let mut cmd = Command::new(target.join(dir).join("prism-bench"));
    cmd.current_dir(root)
        .arg("soak")
        .arg("--prism")
        .arg(target.join(dir).join("prism"))
        .arg("--minutes")
        .arg(minutes.to_string())
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .arg("--max-rss-growth-pct")
        .arg(max_rss_growth_pct.to_string())
        .arg("--out")
        .arg(target.join("bench"));
    if matches!(profile, Profile::Release) {
        cmd.arg("--wait-pool-idle");
    }
    run(cmd, &format!("soak ({dir}, {minutes} min at {concurrency} streams)"))
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

/// The cargo-fuzz targets in `fuzz/`, in the order `all` runs them.
const FUZZ_TARGETS: [&str; 8] = [
    "sse",
    "eventstream",
    "openai_chat",
    "openai_responses",
    "anthropic",
    "gemini",
    "requests",
    "config",
];

/// `cargo xtask fuzz <target|all> --seconds N`: builds every target once, seeds each corpus,
/// then runs the targets one after another and stops at the first crash, naming its artifact.
///
/// Targets build without a sanitizer: the code is safe Rust (`unsafe_code = "forbid"`), so
/// AddressSanitizer finds nothing the panics and assertions would not, and costs build and run time.
fn fuzz(root: &Path, target: &str, seconds: u64) -> Result<()> {
    let root = &checkout_root(root);
    let targets: Vec<&str> = match target {
        "all" => FUZZ_TARGETS.to_vec(),
        one if FUZZ_TARGETS.contains(&one) => vec![one],
        other => {
            bail!("unknown fuzz target `{other}` (one of {}, or all)", FUZZ_TARGETS.join(", "))
        }
    };
    let dir = root.join("fuzz");
    let mut build = Command::new("cargo");
    build.current_dir(&dir).args(["+nightly", "fuzz", "build", "--sanitizer", "none"]);
    run(build, "build the fuzz targets")?;
    for t in targets {
        let corpus = dir.join("corpus").join(t);
        let seeds = seed_corpus(root, t, &corpus)?;
        eprintln!("xtask: {t}: {seeds} seeds in {}", corpus.display());
        let artifacts = dir.join("artifacts").join(t);
        std::fs::create_dir_all(&artifacts)
            .with_context(|| format!("could not create {}", artifacts.display()))?;
        let before = dir_entries(&artifacts);
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&dir).arg("+nightly").args(["fuzz", "run", "--sanitizer", "none", t]);
        cmd.arg(&corpus).args([
            "--".to_owned(),
            format!("-max_total_time={seconds}"),
            "-print_final_stats=1".to_owned(),
            "-rss_limit_mb=2048".to_owned(),
        ]);
        if let Err(e) = run(cmd, &format!("fuzz target {t} for {seconds}s")) {
            for artifact in dir_entries(&artifacts).difference(&before) {
                eprintln!("xtask: {t} crashed; artifact: {}", artifact.display());
                eprintln!(
                    "xtask: reproduce: cd fuzz && cargo +nightly fuzz run -s none {t} {}",
                    artifact.display()
                );
            }
            return Err(e);
        }
    }
    Ok(())
}

/// How long `cargo xtask test` runs each fuzz target: enough to replay the seeded corpus and
/// catch a parser that panics on its own fixtures; the long runs are `cargo xtask fuzz`'s.
const TEST_FUZZ_SECONDS: u64 = 10;

/// Every fuzz target for a few seconds when the nightly toolchain and cargo-fuzz are here; loudly
/// skipped otherwise, and an error where `PRISM_REQUIRE_FUZZ` is set (CI).
fn fuzz_briefly(root: &Path) -> Result<()> {
    let nightly = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if nightly {
        return fuzz(root, "all", TEST_FUZZ_SECONDS);
    }
    if std::env::var_os("PRISM_REQUIRE_FUZZ").is_some() {
        bail!("PRISM_REQUIRE_FUZZ is set but `cargo +nightly fuzz` is not available");
    }
    eprintln!(
        "xtask: WARNING: `cargo +nightly fuzz` not available; the fuzz targets are SKIPPED \
         (their invariants still run as the stable property tests)"
    );
    Ok(())
}

/// The checkout `cargo xtask` was invoked in: the nearest ancestor of the working directory with
/// a `fuzz/` workspace, else `root`. With a target directory shared between checkouts, the xtask
/// binary may have been built in another one, so its compiled-in root is not to be trusted here.
fn checkout_root(root: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.to_path_buf());
    cwd.ancestors()
        .find(|dir| dir.join("fuzz/Cargo.toml").is_file() && dir.join("Cargo.toml").is_file())
        .map_or_else(|| root.to_path_buf(), Path::to_path_buf)
}

fn dir_entries(dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Writes `target`'s seeds into `corpus` (the golden fixtures, framed as the target reads its
/// input; the example configs and the TOML in the docs and config tests) and returns how many.
/// Seeds are regenerated on every run and never committed (`fuzz/.gitignore`).
fn seed_corpus(root: &Path, target: &str, corpus: &Path) -> Result<usize> {
    std::fs::create_dir_all(corpus)
        .with_context(|| format!("could not create {}", corpus.display()))?;
    let fixtures = root.join("fixtures");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    // The translator targets read a mode byte (bit 0: structured; bits 1–2: usage policy) and a
    // little-endian u16 split point before the body; `sse` reads the split point first.
    let stream = |seeds: &mut Vec<(String, Vec<u8>)>, name: String, body: Vec<u8>| {
        let mid = u16::try_from(body.len() / 2).unwrap_or(u16::MAX).to_le_bytes();
        for (mode, split) in [(0u8, [0, 0]), (6, mid)] {
            let mut seed = if target == "sse" {
                vec![split[0], split[1], mode]
            } else {
                vec![mode, split[0], split[1]]
            };
            seed.extend_from_slice(&body);
            seeds.push((format!("{name}-m{mode}"), seed));
        }
    };
    let providers: &[&str] = match target {
        "sse" => &["openai", "anthropic", "gemini", "vertex"],
        "openai_chat" => &["openai"],
        "anthropic" => &["anthropic"],
        "gemini" => &["gemini", "vertex"],
        "eventstream" => &["bedrock"],
        _ => &[],
    };
    let file = if target == "eventstream" { "upstream.eventstream" } else { "upstream.sse" };
    for provider in providers {
        for (case, path) in fixture_files(&fixtures.join(provider), file) {
            let body =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            stream(&mut seeds, format!("{provider}-{case}"), body);
        }
    }
    match target {
        "openai_responses" => {
            // The Responses streams the ingress golden tests pin: real-shaped Responses SSE.
            let snapshots = root.join("crates/prism-ingress/tests/snapshots");
            for path in dir_entries(&snapshots) {
                let name =
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if !name.starts_with("responses__") {
                    continue;
                }
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                if let Some(start) = text.find("--- client stream\n") {
                    let body = &text[start + "--- client stream\n".len()..];
                    let body = body.find("\n--- ").map_or(body, |end| &body[..=end]);
                    stream(
                        &mut seeds,
                        name.trim_end_matches(".snap").to_owned(),
                        body.as_bytes().to_vec(),
                    );
                }
            }
        }
        "requests" => {
            for provider in ["openai", "anthropic", "gemini", "vertex", "bedrock"] {
                for (case, path) in fixture_files(&fixtures.join(provider), "request.json") {
                    let body = std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    seeds.push((format!("chat-{provider}-{case}"), [&[0u8][..], &body].concat()));
                }
            }
            for (i, body) in FUZZ_REQUEST_SEEDS.iter().enumerate() {
                seeds.push((format!("native-{i}"), body.as_bytes().to_vec()));
            }
        }
        "config" => {
            for path in [root.join("docs/examples/prism.toml"), root.join("deploy/prism.toml")] {
                if let Ok(text) = std::fs::read(&path) {
                    let name = path
                        .strip_prefix(root)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .replace('/', "-");
                    seeds.push((name, text));
                }
            }
            // ```toml blocks of the docs, and the raw-string TOML of the config tests.
            for path in dir_entries(&root.join("docs")) {
                if path.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    for (i, block) in text.split("```toml\n").skip(1).enumerate() {
                        let block = block.split("```").next().unwrap_or_default();
                        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                        seeds.push((format!("doc-{stem}-{i}"), block.as_bytes().to_vec()));
                    }
                }
            }
            let tests = root.join("crates/prism-server/src/config.rs");
            let text = std::fs::read_to_string(&tests).unwrap_or_default();
            for (i, raw) in text.split("r#\"").skip(1).enumerate() {
                let raw = raw.split("\"#").next().unwrap_or_default();
                if raw.contains('=') {
                    seeds.push((format!("config-test-{i}"), raw.as_bytes().to_vec()));
                }
            }
        }
        _ => {}
    }
    for (name, bytes) in &seeds {
        let path = corpus.join(format!("seed-{name}"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(seeds.len())
}

/// `(case, path)` of every `<dir>/<case>/<file>`, sorted by case.
fn fixture_files(dir: &Path, file: &str) -> Vec<(String, PathBuf)> {
    dir_entries(dir)
        .into_iter()
        .filter_map(|case| {
            let path = case.join(file);
            let name = case.file_name()?.to_string_lossy().into_owned();
            path.is_file().then_some((name, path))
        })
        .collect()
}

/// Hand-written seeds of the `requests` target for the decoders the fixtures have no bodies for:
/// the selector byte (1 Messages, 2 count_tokens, 3 Responses) comes first.
const FUZZ_REQUEST_SEEDS: [&str; 4] = [
    "\u{1}{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"stream\":true,\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Oslo?\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"sig\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"12C\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}}]}],\"tools\":[{\"name\":\"get_weather\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],\"tool_choice\":{\"type\":\"auto\"},\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u\"}}",
    "\u{2}{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"system\":\"s\",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]}",
    "\u{3}{\"model\":\"gpt-4o-mini\",\"stream\":true,\"instructions\":\"Be brief.\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Weather in Oslo?\"},{\"type\":\"input_image\",\"image_url\":\"data:image/png;base64,iVBORw0KGgo=\"}]},{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"encrypted_content\":\"prism1.e30\"},{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"},{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"12C\"}],\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"},\"strict\":true}],\"tool_choice\":\"auto\",\"reasoning\":{\"effort\":\"low\"},\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"w\",\"schema\":{\"type\":\"object\"}}},\"max_output_tokens\":256,\"temperature\":1,\"store\":false}",
    "\u{3}{\"model\":\"gpt-4o-mini\",\"input\":\"Hello\",\"tools\":[{\"type\":\"web_search_preview\"}],\"previous_response_id\":\"resp_1\"}",
];
