//! The pipeline's seams for the stages that plug in later: an input check before routing
//! (input guardrails), a per-stream output filter between translator and SSE encoder (output
//! guardrails), and a completion cache around the non-streaming path. With no hook installed
//! each seam costs one `Option` check.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};
use prism_cache::CacheOutcome;
use prism_providers::OutChunk;
use prism_types::{ChatCompletion, ChatRequest, ErrorObject};

use crate::body::ResponseBody;

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

/// Checks a request after auth, validation and model lookup, before the cache and any upstream
/// call.
pub trait InputCheck: Send + Sync {
    /// `Err` refuses the request with the given status and error. Headers added to `headers`
    /// go on the response when the request is served (the stream's head included), e.g.
    /// `x-prism-guardrail-warnings`.
    ///
    /// # Errors
    /// The refusal to send.
    fn check(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        headers: &mut HeaderMap,
    ) -> Result<(), HookRejection>;
}

/// Creates the per-stream output filters.
pub trait OutputFilterFactory: Send + Sync {
    /// A filter for one streamed response, or `None` when this request needs none.
    fn start(&self, caller: Caller<'_>, request: &ChatRequest) -> Option<Box<dyn OutputFilter>>;

    /// Checks (and may edit) a whole non-streaming completion, fresh or from the cache.
    /// `headers` already holds what the input check added; headers added here go on the
    /// response with the completion.
    ///
    /// # Errors
    /// The refusal to send instead of the completion.
    fn check_completion(
        &self,
        caller: Caller<'_>,
        request: &ChatRequest,
        completion: &mut ChatCompletion,
        headers: &mut HeaderMap,
    ) -> Result<(), HookRejection> {
        let _ = (caller, request, completion, headers);
        Ok(())
    }
}

/// A per-stream filter between the translator and the SSE encoder. It sees every chunk before
/// the client does and may edit it, withhold it (remove it from the batch and release it later),
/// or end the stream with an error event. A filter that edits a chunk's content must clear its
/// `raw` bytes, or the original pass-through JSON is what gets sent.
pub trait OutputFilter: Send {
    /// Filters one batch of chunks in place.
    ///
    /// # Errors
    /// Ends the stream: the chunks left in `chunks` are sent, then this error event, and no
    /// `[DONE]` (so remove what must not reach the client, keep what precedes the violation).
    fn filter(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection>;

    /// Called once after the upstream ended cleanly, after the closing chunks went through
    /// [`OutputFilter::filter`] and before `[DONE]`; releases anything still withheld into
    /// `chunks`.
    ///
    /// # Errors
    /// As for [`OutputFilter::filter`]: what is left in `chunks`, then the error, no `[DONE]`.
    fn finish(&mut self, chunks: &mut Vec<OutChunk>) -> Result<(), HookRejection>;
}

/// The work a [`CompletionCache`] wraps for one non-streaming request: the upstream call (with
/// retries and fallback) and the output checks. `Ok` holds the serialized `chat.completion` and
/// whether it may be stored; `Err` is the response to send instead (an upstream error, a
/// guardrail refusal), which is never stored.
pub type Compute<'a> = BoxFuture<'a, Result<(Bytes, bool), Response<ResponseBody>>>;

/// One non-streaming request, as a [`CompletionCache`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'a> {
    /// Who is asking (the tenant).
    pub caller: Caller<'a>,
    /// The parsed request.
    pub request: &'a ChatRequest,
    /// The public model's own cache settings (`None`: the cache's defaults).
    pub model_cache: Option<&'a prism_cache::ModelCacheConfig>,
    /// The request's `cache-control` header values, joined with `,`.
    pub cache_control: Option<&'a str>,
}

/// What a [`CompletionCache`] made of one request.
#[derive(Debug)]
pub struct CacheServed {
    /// For the `x-prism-cache` response header. A [`CacheOutcome::Hit`] did not run the
    /// [`Compute`], so the server runs the output checks on the cached body itself.
    pub outcome: CacheOutcome,
    /// The `chat.completion` body, or the error response the [`Compute`] produced.
    pub result: Result<Bytes, Response<ResponseBody>>,
}

/// A cache around the non-streaming path; streaming requests never reach it. The built-in one
/// is configured by `[cache]`.
pub trait CompletionCache: Send + Sync {
    /// Answers `request` from the cache or by running `compute` (at most once), and stores a
    /// cacheable result as the request allows. A cache failure must not fail the request: the
    /// cache runs `compute` instead.
    fn serve<'a>(
        &'a self,
        request: CacheRequest<'a>,
        compute: Compute<'a>,
    ) -> BoxFuture<'a, CacheServed>;

    /// Appends this cache's metrics, in the Prometheus text format, to `GET /metrics`.
    fn render_metrics(&self, out: &mut String) {
        let _ = out;
    }
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
