//! `prism simulate`: the upstream simulator as a standalone server, so a gateway (or any client)
//! can be pointed at OpenAI, Anthropic, Gemini and Bedrock wire formats without real providers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use prism_simulator::{SimConfig, Simulator};

/// Arguments of `prism simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Pause between streamed events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

/// Serves until ctrl-c or SIGTERM.
pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let config = SimConfig::default()
            .with_addr(args.listen)
            .with_demo_delay(Duration::from_millis(args.delay_ms));
        let sim = Simulator::start_with(config).await.context("starting the simulator")?;
        println!("Prism upstream simulator listening on {}", sim.base_url());
        crate::serve::shutdown_signal().await;
        sim.shutdown().await;
        Ok(())
    })
}
