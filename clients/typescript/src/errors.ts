/**
 * The errors Prism adds to the `openai` package's own. Every one is an `APIError` (so
 * `err instanceof OpenAI.APIError` holds), and the `openai` status errors
 * (`AuthenticationError`, `NotFoundError`, `RateLimitError`, …) are thrown unchanged.
 */
import { APIError, PermissionDeniedError } from 'openai';

/** The OpenAI-shaped error object Prism sends, in a response body or a stream's error event. */
export interface PrismErrorObject {
  message?: string;
  type?: string;
  param?: string | null;
  code?: string | null;
}

/** When a guardrail refused: on the request (HTTP 403) or on the streamed output. */
export type GuardrailStage = 'input' | 'output';

/** Prism names the rule in the message: `request blocked by guardrail 'injection' (prompt_injection)`. */
const RULE_IN_MESSAGE = /guardrail '([^']*)'(?: \(([^)]*)\))?/;

/** Whether an error object is a guardrail refusal (`type: "guardrail_error"`). */
export function isGuardrailError(error: unknown): error is PrismErrorObject {
  return typeof error === 'object' && error !== null && (error as PrismErrorObject).type === 'guardrail_error';
}

/**
 * A guardrail in Enforce mode refused: an input rule answers HTTP 403 before any upstream call
 * (`stage: 'input'`); an output rule ends a started stream with an error event
 * (`stage: 'output'`). Both are `PermissionDeniedError`s with `status` 403; for an output block
 * the HTTP response itself had been a 200, and the text streamed before the block is all there is.
 */
export class GuardrailBlockedError extends PermissionDeniedError {
  /** The rule's configured name, e.g. `no-lovely`; `null` if the message does not name one. */
  readonly rule: string | null;
  /** The rule's kind as Prism reports it, e.g. `keywords` or `prompt_injection`. */
  readonly ruleKind: string | null;
  readonly stage: GuardrailStage;

  constructor(stage: GuardrailStage, error: PrismErrorObject, message: string | undefined, headers: Headers) {
    super(403, error, message, headers);
    this.name = 'GuardrailBlockedError';
    this.stage = stage;
    const named = typeof error.message === 'string' ? RULE_IN_MESSAGE.exec(error.message) : null;
    this.rule = named?.[1] ?? null;
    this.ruleKind = named?.[2] ?? null;
  }
}

/**
 * A stream that had started ended with an error event (`data: {"error": {...}}`) instead of
 * `data: [DONE]`: an upstream failure after the first byte, for example. `type` and `code` are the
 * event's (`upstream_error`, `upstream_truncated`, …); `status` is undefined, since the HTTP
 * status had been 200.
 */
export class PrismStreamError extends APIError<undefined, Headers> {
  constructor(error: PrismErrorObject, message: string | undefined, headers: Headers) {
    super(undefined, error, message, headers);
    this.name = 'PrismStreamError';
  }
}

/**
 * A stream ended before it was complete. Either the connection closed without `data: [DONE]`
 * (the client noticed; `code` is `stream_truncated`), or Prism reported that its upstream's
 * stream was cut (`code` is `upstream_truncated`). The chunks received before are all there is.
 */
export class StreamTruncatedError extends PrismStreamError {
  constructor(error: PrismErrorObject, headers: Headers) {
    super(error, undefined, headers);
    this.name = 'StreamTruncatedError';
  }
}

/** The error a stream's error event stands for. */
export function streamEventError(error: PrismErrorObject, headers: Headers): APIError {
  if (error.type === 'guardrail_error') return new GuardrailBlockedError('output', error, undefined, headers);
  if (error.code === 'upstream_truncated') return new StreamTruncatedError(error, headers);
  return new PrismStreamError(error, undefined, headers);
}

/** The error for a stream whose connection closed without `data: [DONE]`. */
export function truncatedByClose(headers: Headers, chunks: number): StreamTruncatedError {
  return new StreamTruncatedError(
    {
      message: `the stream ended without data: [DONE] after ${chunks} chunk${chunks === 1 ? '' : 's'}; the response is incomplete`,
      type: 'stream_error',
      param: null,
      code: 'stream_truncated',
    },
    headers,
  );
}
