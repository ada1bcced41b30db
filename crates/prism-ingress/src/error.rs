//! The one error of request decoding.

/// A client request that cannot be decoded or expressed canonically: always a 400 in the
/// ingress protocol's own error shape, naming the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct IngressError {
    /// The parameter at fault (a JSON path such as `messages.2.content.0.source`), when known.
    pub param: Option<String>,
    /// What is wrong, for the client; never quotes message content.
    pub message: String,
}

impl IngressError {
    /// An error about `param`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        IngressError { param: Some(param.into()), message: message.into() }
    }

    /// An error about the whole body.
    pub fn body(message: impl Into<String>) -> Self {
        IngressError { param: None, message: message.into() }
    }
}
