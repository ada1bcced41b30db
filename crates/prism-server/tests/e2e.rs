//! End-to-end tests: the gateway in-process on an ephemeral port, in front of the upstream
//! simulator speaking every provider's native wire format, driven over HTTP with reqwest.

#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod e2e {
    pub(crate) mod abuse;
    pub(crate) mod endpoints;
    pub(crate) mod errors;
    pub(crate) mod faults;
    pub(crate) mod ingress;
    pub(crate) mod providers;
    pub(crate) mod reload;
    pub(crate) mod resilience;
    pub(crate) mod support;
    pub(crate) mod usage;
}

use e2e::support;
