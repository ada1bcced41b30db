//! Integration tests for prism-sse, one binary with a module per concern: the spec table, split
//! invariance against a reference model, encoder round trips, limits, the stream adapter, and
//! replay of recorded provider streams.

mod support;

mod limits;
mod properties;
mod replay;
mod roundtrip;
mod spec;
mod stream;
