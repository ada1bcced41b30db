//! gemini translator (in progress).
