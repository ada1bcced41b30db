//! The client handle and the `chat().completions()` namespace.

use std::time::Duration;

use prism_types::{ChatCompletion, ChatRequest};
use rand::Rng;

use crate::error::{Error, api_error_from_body, retryable_status};
use crate::stream::{ChatCompletionStream, ChunkStream};

/// When and how often to retry a request that failed before any response arrived.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Backoff before the first retry; doubles each time, with full jitter.
    pub initial_backoff: Duration,
    /// Upper bound of a single wait, including a server's `retry-after`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// A Prism client. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Prism {
    http: reqwest::Client,
    api_key: String,
    base_url: String,
    timeout: Option<Duration>,
    retry: RetryPolicy,
}

impl Prism {
    /// The default base URL: a gateway on this machine.
    pub const DEFAULT_BASE_URL: &'static str = "http://127.0.0.1:8080";

    /// A client sending `api_key` as the bearer token to [`Prism::DEFAULT_BASE_URL`].
    pub fn new(api_key: impl Into<String>) -> Self {
        Prism {
            http: default_http_client(),
            api_key: api_key.into(),
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            timeout: Some(Duration::from_secs(600)),
            retry: RetryPolicy::default(),
        }
    }

    /// A client configured from `PRISM_API_KEY` and `PRISM_BASE_URL` (optional).
    ///
    /// # Errors
    /// [`Error::Config`] when `PRISM_API_KEY` is not set.
    pub fn from_env() -> Result<Self, Error> {
        let key = std::env::var("PRISM_API_KEY")
            .map_err(|_| Error::Config("PRISM_API_KEY is not set".to_owned()))?;
        let mut client = Prism::new(key);
        if let Ok(url) = std::env::var("PRISM_BASE_URL") {
            client = client.base_url(url);
        }
        Ok(client)
    }

    /// Sets the base URL (`http://host:port`, with or without a trailing `/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let mut url = url.into();
        while url.ends_with('/') {
            url.pop();
        }
        self.base_url = url;
        self
    }

    /// Sets the total timeout of non-streaming requests (streams are bounded by the server).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Uses a caller-provided reqwest client (shared pool, proxies, TLS settings).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The `chat` namespace.
    pub fn chat(&self) -> Chat<'_> {
        Chat { client: self }
    }

    fn endpoint(&self, path: &str) -> String {
        if self.base_url.ends_with("/v1") {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/v1{path}", self.base_url)
        }
    }

    /// Sends `body`, retrying connection failures and retryable statuses before any response
    /// body was read. Returns the successful response.
    async fn send(&self, body: &ChatRequest, stream: bool) -> Result<reqwest::Response, Error> {
        let url = self.endpoint("/chat/completions");
        // Serialised once; each retry shares the same bytes instead of copying them.
        let payload = bytes::Bytes::from(
            serde_json::to_vec(body).map_err(|source| Error::Decode { what: "request", source })?,
        );
        let mut attempt = 0u32;
        loop {
            let mut req = self
                .http
                .post(&url)
                .bearer_auth(&self.api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(payload.clone());
            if stream {
                req = req.header(reqwest::header::ACCEPT, "text/event-stream");
            } else if let Some(t) = self.timeout {
                req = req.timeout(t);
            }
            let (err, retry_after) = match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let err = Error::Api(api_error_from_body(Some(status), &bytes));
                    if !retryable_status(status) {
                        return Err(err);
                    }
                    (err, retry_after)
                }
                Err(e) => (Error::Transport(Box::new(e)), None),
            };
            if attempt >= self.retry.max_retries {
                return Err(err);
            }
            tokio::time::sleep(self.backoff(attempt, retry_after)).await;
            attempt += 1;
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry.max_backoff);
        }
        let ceiling = self
            .retry
            .initial_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.retry.max_backoff);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(if millis == 0 {
            0
        } else {
            rand::thread_rng().gen_range(millis / 2..=millis)
        })
    }
}

fn default_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The `chat` namespace of a [`Prism`] client.
#[derive(Debug, Clone, Copy)]
pub struct Chat<'a> {
    client: &'a Prism,
}

impl<'a> Chat<'a> {
    /// The `chat.completions` namespace.
    pub fn completions(&self) -> Completions<'a> {
        Completions { client: self.client }
    }
}

/// `chat.completions`: create, create_stream, stream.
#[derive(Debug, Clone, Copy)]
pub struct Completions<'a> {
    client: &'a Prism,
}

impl Completions<'_> {
    /// A non-streaming completion.
    ///
    /// # Errors
    /// [`Error::Api`] for error statuses, [`Error::Transport`], [`Error::Decode`].
    pub async fn create(&self, mut request: ChatRequest) -> Result<ChatCompletion, Error> {
        request.stream = None;
        request.stream_options = None;
        let resp = self.client.send(&request, false).await?;
        let bytes = resp.bytes().await.map_err(|e| Error::Transport(Box::new(e)))?;
        serde_json::from_slice(&bytes)
            .map_err(|source| Error::Decode { what: "completion", source })
    }

    /// A stream of typed chunks, ending cleanly at `[DONE]`. Dropping it closes the connection.
    ///
    /// # Errors
    /// Errors before the stream started ([`Error::Api`], [`Error::Transport`]); later failures
    /// arrive as items of the stream.
    pub async fn create_stream(&self, mut request: ChatRequest) -> Result<ChunkStream, Error> {
        request.stream = Some(true);
        let resp = self.client.send(&request, true).await?;
        Ok(ChunkStream::new(resp.bytes_stream()))
    }

    /// The stream manager: text deltas, raw chunks, and the assembled final completion with
    /// usage (it sets `stream_options.include_usage` itself).
    ///
    /// # Errors
    /// As [`Completions::create_stream`].
    pub async fn stream(&self, mut request: ChatRequest) -> Result<ChatCompletionStream, Error> {
        let mut options = request.stream_options.take().unwrap_or_default();
        options.include_usage = Some(true);
        request.stream_options = Some(options);
        let chunks = self.create_stream(request).await?;
        Ok(ChatCompletionStream::new(chunks))
    }
}
