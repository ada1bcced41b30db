/**
 * `@futureagi/prism`: the TypeScript/JavaScript client of the Prism LLM gateway, built on the
 * official `openai` package.
 */
export { Prism, PrismChat, PrismCompletions, DEFAULT_BASE_URL, gatewayApiUrl, type PrismOptions } from './client.js';
export { PrismChatCompletionStream } from './chat-completion-stream.js';
export { PrismStream, sseEvents, type SseEvent } from './stream.js';
export {
  GuardrailBlockedError,
  PrismStreamError,
  StreamTruncatedError,
  isGuardrailError,
  type GuardrailStage,
  type PrismErrorObject,
} from './errors.js';
export { prismMetadata, metadataFromHeaders, type PrismMetadata, type MetadataSource } from './metadata.js';
export type { RequestOptions } from './options.js';

// The `openai` package's errors and client, for `instanceof` checks without a second import.
export {
  OpenAI,
  OpenAIError,
  APIError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  UnprocessableEntityError,
} from 'openai';
export { Prism as default } from './client.js';
