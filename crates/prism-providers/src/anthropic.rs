//! anthropic translator (in progress).
