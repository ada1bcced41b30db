//! openai translator (in progress).
