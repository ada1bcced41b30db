//! `prism chat`: a terminal client for any Prism (or OpenAI-compatible) endpoint, built on the SDK.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use prism_client::Prism;
use prism_types::{ChatRequest, Message, Usage};

/// Arguments of `prism chat`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChatArgs {
    /// The prompt; read from stdin when absent.
    pub prompt: Option<String>,
    /// Public model name, e.g. demo/anthropic.
    #[arg(long, short)]
    pub model: String,
    /// A system message sent before the prompt.
    #[arg(long, short)]
    pub system: Option<String>,
    /// Print token usage at the end.
    #[arg(long)]
    pub usage: bool,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
    /// Client API key.
    #[arg(long, env = "PRISM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Gateway base URL.
    #[arg(long, env = "PRISM_BASE_URL", default_value = Prism::DEFAULT_BASE_URL)]
    pub base_url: String,
}

/// Runs one chat turn, streaming the answer to stdout as it arrives.
///
/// # Errors
/// API, transport and stream errors, with the gateway's message; the binary exits non-zero.
pub(crate) async fn run(args: ChatArgs) -> Result<()> {
    let prompt = match args.prompt {
        Some(p) => p,
        None => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("(reading the prompt from stdin; end it with Ctrl-D)");
            }
            let mut buf = String::new();
            stdin.read_to_string(&mut buf).context("could not read the prompt from stdin")?;
            buf
        }
    };
    if prompt.trim().is_empty() {
        bail!("the prompt is empty");
    }
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(Message::System { content: system.into(), name: None });
    }
    messages.push(Message::User { content: prompt.into(), name: None });
    let request = ChatRequest { model: args.model, messages, ..ChatRequest::default() };
    let client = Prism::new(args.api_key).base_url(args.base_url);
    let mut out = std::io::stdout().lock();

    let usage = if args.no_stream {
        let completion = client.chat().completions().create(request).await?;
        for choice in &completion.choices {
            if let Some(text) = &choice.message.content {
                write!(out, "{text}")?;
            }
            if let Some(refusal) = &choice.message.refusal {
                write!(out, "[refusal] {refusal}")?;
            }
            for call in choice.message.tool_calls.iter().flatten() {
                write!(out, "\n[tool call] {}({})", call.function.name, call.function.arguments)?;
            }
        }
        writeln!(out)?;
        completion.usage
    } else {
        let mut stream = client.chat().completions().stream(request).await?;
        while let Some(text) = stream.text_stream().next().await {
            write!(out, "{}", text?)?;
            out.flush()?;
        }
        let completion = stream.final_completion().await?;
        for call in completion.choices.iter().flat_map(|c| c.message.tool_calls.iter().flatten()) {
            write!(out, "\n[tool call] {}({})", call.function.name, call.function.arguments)?;
        }
        writeln!(out)?;
        completion.usage
    };
    if args.usage {
        print_usage(usage.as_ref());
    }
    Ok(())
}

fn print_usage(usage: Option<&Usage>) {
    match usage {
        Some(u) => {
            let cached =
                u.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
            let reasoning =
                u.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0);
            eprintln!(
                "usage: prompt {} (cached {cached}), completion {} (reasoning {reasoning}), total {}",
                u.prompt_tokens, u.completion_tokens, u.total_tokens
            );
        }
        None => eprintln!("usage: not reported"),
    }
}
