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
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    match &args.config {
        Some(path) => {
            let mut config = Config::load(path)
                .with_context(|| format!("invalid configuration {}", path.display()))?;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            let server = Server::bind(config).await?;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "Prism listening on http://{}", server.local_addr());
            drop(out);
            server.run_until(shutdown_signal()).await?;
        }
        None => {
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
            server.run_until(shutdown_signal()).await?;
            sim.shutdown().await;
        }
    }
    Ok(())
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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
