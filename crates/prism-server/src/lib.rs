//! The Prism gateway server: an OpenAI-compatible HTTP front (hyper 1.x, HTTP/1.1 and HTTP/2)
//! that authenticates, routes each public model to its ordered deployments, retries and falls
//! back while nothing has reached the client, and streams translated chunks with backpressure.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = prism_server::Config::load(std::path::Path::new("prism.toml"))?;
//! let server = prism_server::Server::bind(config).await?;
//! server.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

// The request path, in stage order (each stage calls only the ones below it).
mod admission;
mod attempts;
mod cache;
mod checks;
mod ingress;
mod pipeline;
mod report;
mod respond;
mod routes;
mod stream;
mod tokens;

// Shared by the stages.
mod body;
pub mod config;
mod conn;
mod error;
mod guardrails;
mod hooks;
mod metrics;
mod server;
mod state;
mod telemetry;
mod usage;

pub use body::ResponseBody;
pub use config::{Config, ConfigError, EmbeddedOptions};
pub use error::GatewayError;
pub use hooks::{
    BoxFuture, CacheRequest, CacheServed, Caller, CompletionCache, Compute, HookRejection, Hooks,
    InputCheck, OutputFilter, OutputFilterFactory,
};
pub use metrics::Metrics;
pub use server::{Reloader, Server, ServerError, ServerHandle};
