//! bedrock translator (in progress).
