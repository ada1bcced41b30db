//! `POST /v1/messages/count_tokens`: exact from the model's first deployment when it is the
//! Anthropic API (the request is translated and forwarded to its `count_tokens`), otherwise, or
//! when that call fails, the documented estimate of `prism_ingress::messages`. The
//! `x-prism-token-count` header says which (`exact` or `estimate`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use prism_ingress::Protocol;
use prism_providers::{Credentials, Deployment, ProviderKind};
use prism_types::ChatRequest;
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

use crate::body::ResponseBody;
use crate::error::GatewayError;
use crate::state::AppState;
use crate::{admission, ingress, respond};

/// Answers one count_tokens request.
pub(crate) async fn count(
    state: &AppState,
    req: http::Request<Incoming>,
) -> Response<ResponseBody> {
    let protocol = Protocol::Messages;
    let (parts, body) = req.into_parts();
    let result = async {
        let key = ingress::authenticate(state, &parts.headers)?;
        let body = ingress::read_body(state, &parts.headers, body).await?;
        let request =
            prism_ingress::messages::decode_count_tokens(&body).map_err(ingress::invalid)?;
        let admitted = admission::admit(state, key, &request.model).map_err(|r| r.error)?;
        let deployment = admitted.route.deployments.first().map(|t| &t.deployment);
        let exact = match deployment {
            Some(d) if d.kind == ProviderKind::Anthropic => exact(state, &request, d).await,
            _ => None,
        };
        Ok::<_, GatewayError>(match exact {
            Some(n) => (n, "exact"),
            None => (prism_ingress::messages::estimate_input_tokens(&request), "estimate"),
        })
    }
    .await;
    match result {
        Ok((tokens, how)) => {
            let body = prism_ingress::messages::count_tokens_body(tokens);
            let mut resp = Response::new(ResponseBody::full(body));
            *resp.status_mut() = StatusCode::OK;
            let headers = resp.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("x-prism-token-count", HeaderValue::from_static(how));
            resp
        }
        Err(e) => respond::error(protocol, &e),
    }
}

/// The Anthropic API's own count, or `None` (logged) when it cannot be had in time.
async fn exact(state: &AppState, request: &ChatRequest, deployment: &Deployment) -> Option<u64> {
    let mut body = prism_providers::anthropic::build_body(request, deployment, false).ok()?;
    if let Value::Object(map) = &mut body {
        // count_tokens takes the prompt only.
        for field in
            ["max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata"]
        {
            map.remove(field);
        }
    }
    let body = Bytes::from(serde_json::to_vec(&body).ok()?);
    let url = format!("{}/v1/messages/count_tokens", deployment.base_url);
    let mut builder = state
        .upstream
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("anthropic-version", prism_providers::anthropic::API_VERSION);
    builder = match &deployment.credentials {
        Credentials::ApiKey(key) => builder.header("x-api-key", key.expose()),
        Credentials::Bearer(token) => builder.bearer_auth(token.expose()),
        Credentials::None => builder,
        Credentials::Aws { .. } => return None,
    };
    let deadline = Instant::now() + state.config.timeouts.first_token;
    let response = match timeout_at(deadline, builder.body(body).send()).await {
        Ok(Ok(response)) if response.status().is_success() => response,
        Ok(Ok(response)) => {
            tracing::info!(
                status = response.status().as_u16(),
                "count_tokens upstream refused; estimating"
            );
            return None;
        }
        _ => {
            tracing::info!("count_tokens upstream unreachable; estimating");
            return None;
        }
    };
    let value: Value = timeout_at(deadline, response.json()).await.ok()?.ok()?;
    value.get("input_tokens").and_then(Value::as_u64)
}
