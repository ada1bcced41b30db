//! The pipeline's seams for the stages that plug in later: an input check before routing
//! (input guardrails), a per-stream output filter between translator and SSE encoder (output
//! guardrails), and a completion cache around the non-streaming path. With no hook installed
//! each seam costs one `Option` check.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prism_providers::OutChunk;
use prism_types::{ChatCompletion, ChatRequest, ErrorObject};

/// A boxed future, for the object-safe async hooks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A hook's refusal: the status (used only while the response head has not gone out) and the
/// error the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRejection {
    /// HTTP status for a refusal before the first byte.
    pub status: u16,
    /// The OpenAI error object (must not quote the offending text).
    pub error: ErrorObject,
}

/// Who is asking: the client key's configured name (the tenant for caches and policies).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The key's name from the config.
    pub key_name: &'a str,
}

/// Checks a request after auth and validation, before routing.
pub trait InputCheck: Send + Sync {
    /// `Err` refuses the request with the given status and error.
    ///
    /// # Errors
    /// The refusal to send.
    fn check(&self, caller: Caller<'_>, request: &ChatRequest) -> Result<(), HookRejection>;
}

/// Creates the per-stream output filters.
pub trait OutputFilterFactory: Send + Sync {
    /// A filter for one streamed response, or `None` when this request needs none.
    fn start(&self, caller: Caller<'_>, request: &ChatRequest) -> Option<Box<dyn OutputFilter>>;

    /// Checks (and may edit) a whole non-streaming completion.
    ///
    /// # Errors
    /// The refusal to send instead of the completion.
    fn check_completion(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        completion: &mut ChatCompletion,
    ) -> Result<(), HookRejection> {
        let _ = (caller, request, completion);
        Ok(())
    }
}

/// A per-stream filter between the translator and the SSE encoder. It sees every chunk before
/// the client does and may edit it, withhold it (remove it from the batch and release it later),
/// or end the stream with an error event.
pub trait OutputFilter: Send {
    /// Filters one batch of chunks in place.
    ///
    /// # Errors
    /// Ends the stream with this error event (no `[DONE]`).
    fn filter(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection>;

    /// Called once after the upstream ended cleanly, before the closing chunks are encoded;
    /// releases anything still withheld into `chunks`.
    ///
    /// # Errors
    /// Ends the stream with this error event (no `[DONE]`).
    fn finish(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection>;
}

/// A cache of whole completions, consulted on the non-streaming path only.
pub trait CompletionCache: Send + Sync {
    /// A cached completion for `request`, if any. Failures count as a miss.
    fn lookup<'a>(
        &'a self,
        caller: Caller<'a>,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Option<ChatCompletion>>;

    /// Stores a fresh completion. Failures are the cache's to log; the request succeeds anyway.
    fn store<'a>(
        &'a self,
        caller: Caller<'a>,
        request: &'a ChatRequest,
        completion: &'a ChatCompletion,
    ) -> BoxFuture<'a, ()>;
}

/// The installed hooks; all empty by default.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Input check (guardrails).
    pub input: Option<Arc<dyn InputCheck>>,
    /// Output filters (guardrails).
    pub output: Option<Arc<dyn OutputFilterFactory>>,
    /// Completion cache.
    pub cache: Option<Arc<dyn CompletionCache>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("input", &self.input.is_some())
            .field("output", &self.output.is_some())
            .field("cache", &self.cache.is_some())
            .finish()
    }
}
