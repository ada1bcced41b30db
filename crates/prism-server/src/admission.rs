//! Stage 2, admission: the public model must exist and the key may use it, and the request
//! takes one of the gateway's concurrency slots (held until its answer or stream ends).

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::config::{ClientKey, ModelRoute};
use crate::error::GatewayError;
use crate::state::AppState;

/// An admitted request: its route and its concurrency slot.
#[derive(Debug)]
pub(crate) struct Admitted<'s> {
    pub(crate) route: &'s ModelRoute,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// A refused request: the error, and the route when the model exists (for its metric label).
#[derive(Debug)]
pub(crate) struct Refused<'s> {
    pub(crate) route: Option<&'s ModelRoute>,
    pub(crate) error: GatewayError,
}

/// Admits a request for `model` by `key`.
pub(crate) fn admit<'s>(
    state: &'s AppState,
    key: &ClientKey,
    model: &str,
) -> Result<Admitted<'s>, Box<Refused<'s>>> {
    let refuse = |route, error| Err(Box::new(Refused { route, error }));
    let Some(route) = state.config.model(model) else {
        return refuse(None, GatewayError::ModelNotFound { model: model.to_owned() });
    };
    if !key.allows(&route.name) {
        let e = GatewayError::Forbidden { key: key.name.clone(), model: route.name.clone() };
        return refuse(Some(route), e);
    }
    let permit = match &state.limiter {
        None => None,
        Some(sem) => match Arc::clone(sem).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return refuse(Some(route), GatewayError::Overloaded),
        },
    };
    Ok(Admitted { route, permit })
}
