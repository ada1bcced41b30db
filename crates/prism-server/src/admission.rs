//! Stage 2, admission: the public model must exist and the key may use it, and the request
//! takes one of its key's slots and one of the gateway's (both held until its answer or stream
//! ends). The key's slot comes first, so a key at its cap never takes a gateway slot from others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prism_ledger::RefusalReason;
use prism_ledger::limits::ScopeKind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ClientKey, ModelRoute};
use crate::error::GatewayError;
use crate::state::AppState;

/// An admitted request: its route and its concurrency slot.
#[derive(Debug)]
pub(crate) struct Admitted<'s> {
    pub(crate) route: &'s ModelRoute,
    pub(crate) permit: Option<Slot>,
}

/// A request's hold on the concurrency limits; dropping it frees both slots.
#[derive(Debug)]
pub(crate) struct Slot {
    _gateway: Option<OwnedSemaphorePermit>,
    _key: Option<OwnedSemaphorePermit>,
}

/// `limits.max_concurrent_per_key`: one semaphore per client key, made on the key's first
/// request (keys come from the config, so the map is bounded by it).
#[derive(Debug)]
pub(crate) struct KeySlots {
    per_key: usize,
    by_key: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl KeySlots {
    /// `None` when keys are not capped.
    pub(crate) fn new(per_key: usize) -> Option<Arc<KeySlots>> {
        (per_key > 0).then(|| Arc::new(KeySlots { per_key, by_key: Mutex::new(HashMap::new()) }))
    }

    /// The cap each key gets.
    pub(crate) fn per_key(&self) -> usize {
        self.per_key
    }

    fn try_acquire(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            // Held for a lookup only, never across an await.
            let mut by_key = self.by_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match by_key.get(key) {
                Some(semaphore) => Arc::clone(semaphore),
                None => {
                    let semaphore = Arc::new(Semaphore::new(self.per_key));
                    by_key.insert(key.to_owned(), Arc::clone(&semaphore));
                    semaphore
                }
            }
        };
        semaphore.try_acquire_owned().ok()
    }
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
    let key_slot = match &state.key_slots {
        None => None,
        Some(slots) => match slots.try_acquire(&key.name) {
            Some(permit) => Some(permit),
            None => return refuse(Some(route), key_at_cap(slots.per_key())),
        },
    };
    let gateway_slot = match &state.limiter {
        None => None,
        Some(sem) => match Arc::clone(sem).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return refuse(Some(route), GatewayError::Overloaded),
        },
    };
    Ok(Admitted { route, permit: Some(Slot { _gateway: gateway_slot, _key: key_slot }) })
}

/// The 429 of a key with `limit` requests in flight: the ledger's own concurrency refusal.
fn key_at_cap(limit: usize) -> GatewayError {
    let reason = RefusalReason::Concurrency { scope: ScopeKind::Key, limit: limit as u64 };
    GatewayError::Limited {
        message: reason.message(),
        kind: reason.error_type(),
        code: reason.error_code(),
        retry_after: Some(Duration::from_secs(1)),
        label: reason.label(),
    }
}
