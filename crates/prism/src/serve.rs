//! `prism serve` and `prism check-config`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use prism_server::config::{BARE_MODELS, DEMO_MODELS, generate_dev_key, process_env};
use prism_server::{Config, EmbeddedOptions, Server};
use prism_simulator::{SimConfig, Simulator};

/// Pause between events of the demo upstream, so a person watching sees tokens arrive.
const DEMO_EVENT_DELAY: Duration = Duration::from_millis(40);

/// `prism serve` options.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Configuration file; without it Prism runs the embedded demo default.
    #[arg(long, short, env = "PRISM_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the file's `listen`).
    #[arg(long, env = "PRISM_LISTEN")]
    listen: Option<SocketAddr>,
    /// Reload the configuration file whenever it changes (as on SIGHUP).
    #[arg(long, requires = "config")]
    watch: bool,
    /// Log lines as `text` or as one JSON object each (`json`), on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "PRISM_LOG_FORMAT")]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// How often `--watch` looks at the configuration file.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(args))
}

/// Every connection and every upstream stream is a descriptor, and many systems start processes
/// with a soft limit of 1024 under a much higher hard one: a gateway should use what it may, as
/// nginx (`worker_rlimit_nofile`) and Go's runtime do.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        // Best effort: the old soft limit still works, only with fewer connections.
        let _ = setrlimit(Resource::Nofile, raised);
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    match &args.config {
        Some(path) => {
            let mut config = Config::load(path)
                .with_context(|| format!("invalid configuration {}", path.display()))?;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            // Telemetry first: the server takes its meters from what is installed.
            let telemetry = crate::telemetry::init(args.log_format, &config.telemetry)?;
            let server = Server::bind(config).await?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "Prism listening on http://{}", server.local_addr());
            drop(out);
            let reload =
                Reload { path: path.clone(), listen: args.listen, reloader: server.reloader() };
            tokio::spawn(reload.clone().on_sighup());
            if args.watch {
                tokio::spawn(reload.watch());
            }
            server.run_until(shutdown_signal()).await?;
            telemetry.shutdown().await;
        }
        None => {
            let telemetry = crate::telemetry::init(
                args.log_format,
                &prism_server::config::TelemetryConfig::from_env(&process_env),
            )?;
            let sim = Simulator::start_with(SimConfig::default().with_demo_delay(DEMO_EVENT_DELAY))
                .await
                .context("starting the demo upstream simulator")?;
            let dev_key = process_env("PRISM_DEV_KEY")
                .filter(|k| !k.is_empty())
                .unwrap_or_else(generate_dev_key);
            let base_url = sim.base_url();
            let mut config = Config::embedded(EmbeddedOptions {
                simulator_url: &base_url,
                dev_key: &dev_key,
                env: &process_env,
            });
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            // (public name, provider label) of every model, for the banner.
            let models: Vec<(String, String)> = config
                .models
                .iter()
                .map(|m| {
                    let provider = m.deployments.first().map(|t| t.provider.clone());
                    (m.name.clone(), provider.unwrap_or_default())
                })
                .collect();
            let server = Server::bind(config).await?;
            print_banner(server.local_addr(), &dev_key, &models);
            tokio::spawn(ignore_sighup());
            server.run_until(shutdown_signal()).await?;
            sim.shutdown().await;
            telemetry.shutdown().await;
        }
    }
    Ok(())
}

/// Hot reload of the configuration file: on SIGHUP, or when `--watch` sees the file change.
/// The file is validated in full first (the same `Config::load` as `prism check-config`); an
/// invalid file keeps the running configuration, logs why and counts
/// `prism_config_reloads_total{outcome="invalid"}`.
#[derive(Clone)]
struct Reload {
    path: PathBuf,
    /// `--listen`, which keeps overriding the file.
    listen: Option<SocketAddr>,
    reloader: prism_server::Reloader,
}

impl Reload {
    fn apply(&self) {
        match Config::load(&self.path) {
            Ok(mut config) => {
                if let Some(listen) = self.listen {
                    config.listen = listen;
                }
                if let Err(e) = self.reloader.reload(config) {
                    self.reloader.rejected(&e);
                }
            }
            Err(e) => self.reloader.rejected(&e),
        }
    }

    #[cfg(unix)]
    async fn on_sighup(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with --watch instead");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!(path = %self.path.display(), "SIGHUP: reloading the configuration");
            self.apply();
        }
    }

    #[cfg(not(unix))]
    async fn on_sighup(self) {}

    /// Polls the file's contents (cheap, and unlike modification times it cannot miss two
    /// writes within one timestamp tick or a file replaced by a rename).
    async fn watch(self) {
        let mut seen = std::fs::read(&self.path).ok();
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = tokio::fs::read(&self.path).await.ok();
            if now.is_some() && now != seen {
                tracing::info!(path = %self.path.display(), "configuration file changed; reloading");
                seen = now;
                self.apply();
            }
        }
    }
}

/// The embedded default has no file to reload; SIGHUP must not end the process (its default).
async fn ignore_sighup() {
    #[cfg(unix)]
    if let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: the embedded default has no configuration file to reload");
        }
    }
}

/// Prints the start-up banner. Write errors are ignored: a closed stdout must not stop the server.
fn print_banner(addr: SocketAddr, key: &str, models: &[(String, String)]) {
    let demo: Vec<&str> = DEMO_MODELS.iter().map(|(name, _, _)| *name).collect();
    let is_bare = |m: &str| BARE_MODELS.iter().any(|(name, _)| *name == m);
    let real: Vec<&str> = models
        .iter()
        .map(|(m, _)| m.as_str())
        .filter(|m| !demo.contains(m) && !is_bare(m))
        .collect();
    // Bare names, grouped by where they go: `gpt-4o-mini, gpt-4o → demo-openai (simulated)`.
    let mut bare: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, provider) in models.iter().filter(|(m, _)| is_bare(m)) {
        match bare.iter_mut().find(|(p, _)| p == provider) {
            Some((_, names)) => names.push(name),
            None => bare.push((provider, vec![name])),
        }
    }
    let mut text = String::new();
    let _ = writeln!(text, "Prism is running on http://{addr} (embedded default configuration)\n");
    let _ = writeln!(text, "  Development key: {key}");
    let _ = writeln!(text, "  Demo models (in-process simulated upstreams): {}", demo.join(", "));
    if real.is_empty() {
        let _ = writeln!(
            text,
            "  Real providers: none (set OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or AWS credentials)"
        );
    } else {
        let _ = writeln!(text, "  Real provider models: {}", real.join(", "));
    }
    let _ = writeln!(text, "  Popular model names:");
    for (provider, names) in &bare {
        let how = if provider.starts_with("demo-") { "simulated" } else { "real provider" };
        let _ = writeln!(text, "    {} -> {provider} ({how})", names.join(", "));
    }
    let _ = writeln!(text, "\nTry it:");
    let _ = writeln!(text, "  export KEY={key}");
    let _ = writeln!(
        text,
        "  curl -N http://{addr}/v1/chat/completions -H \"Authorization: Bearer $KEY\" -H 'content-type: application/json' \\\n    -d '{{\"model\":\"demo/anthropic\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Say hello\"}}]}}'\n"
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub(crate) fn check_config(file: &Path) -> anyhow::Result<()> {
    let config =
        Config::load(file).with_context(|| format!("invalid configuration {}", file.display()))?;
    let deployments: usize = config.models.iter().map(|m| m.deployments.len()).sum();
    println!(
        "{}: ok (listen {}, {} keys, {} models, {} deployments)",
        file.display(),
        config.listen,
        config.keys.len(),
        config.models.len(),
        deployments
    );
    Ok(())
}

/// Resolves on ctrl-c or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
