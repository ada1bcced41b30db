//! The OpenAI error object: `{"error":{"message","type","param","code"}}`.

use serde::{Deserialize, Serialize};

/// The envelope OpenAI wraps every error in, in HTTP bodies and in mid-stream SSE events alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorObject,
}

/// One error, as OpenAI describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Human-readable description. Never contains secrets or matched guarded text.
    pub message: String,
    /// Error class, e.g. `invalid_request_error`, `rate_limit_error`, `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when one is.
    #[serde(default)]
    pub param: Option<String>,
    /// Machine-readable code, e.g. `model_not_found`, `rate_limit_exceeded`.
    #[serde(default)]
    pub code: Option<String>,
}

impl ErrorObject {
    /// An error of `kind` with `message`, no param and an optional code.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorObject { message: message.into(), kind: kind.into(), param: None, code: None }
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the request field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Wraps the object in its `{"error": …}` envelope.
    pub fn into_body(self) -> ErrorBody {
        ErrorBody { error: self }
    }
}
