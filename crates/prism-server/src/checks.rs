//! Stages 3 and 6 for whole answers: the input hook (guardrails on the request) before the cache
//! and any upstream call, and the output hook on a whole completion (fresh, or from the cache,
//! since a stored entry may have been checked under another caller's rules). Streams get their
//! output filter in `stream`.

use http::HeaderMap;
use prism_types::{ChatCompletion, ChatRequest};

use crate::error::GatewayError;
use crate::hooks::Caller;
use crate::state::AppState;

/// Runs the input hook. Headers it adds (guardrail warnings) go on the eventual response.
pub(crate) fn input(
    state: &AppState,
    caller: Caller<'_>,
    request: &ChatRequest,
    hook_headers: &mut HeaderMap,
) -> Result<(), GatewayError> {
    match &state.hooks.input {
        Some(check) => check
            .check(caller, request, hook_headers)
            .map_err(|r| GatewayError::Rejected { status: r.status, error: r.error }),
        None => Ok(()),
    }
}

/// Runs the output hook over a whole completion; it may edit it.
pub(crate) fn completion(
    state: &AppState,
    caller: Caller<'_>,
    request: &ChatRequest,
    completion: &mut ChatCompletion,
    hook_headers: &mut HeaderMap,
) -> Result<(), GatewayError> {
    match &state.hooks.output {
        Some(output) => output
            .check_completion(caller, request, completion, hook_headers)
            .map_err(|r| GatewayError::Rejected { status: r.status, error: r.error }),
        None => Ok(()),
    }
}
