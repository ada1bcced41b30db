/**
 * `Prism`: the `openai` package's client, pointed at a Prism gateway, with Chat Completions
 * streams that fail loudly (truncation, error events, guardrail refusals) and gateway metadata.
 */
import OpenAI, { OpenAIError, type APIError, type ClientOptions } from 'openai';
import type { APIPromise } from 'openai/api-promise';
import type { Stream } from 'openai/streaming';
import { Chat } from 'openai/resources/chat/chat';
import { Completions } from 'openai/resources/chat/completions/completions';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsBase,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import type { ChatCompletionStreamParams } from 'openai/lib/ChatCompletionStream';
import type { ExtractParsedContentFromParams } from 'openai/lib/parser';

import { PrismChatCompletionStream } from './chat-completion-stream.js';
import { GuardrailBlockedError, isGuardrailError } from './errors.js';
import { attachMetadata, metadataFromHeaders } from './metadata.js';
import type { RequestOptions } from './options.js';
import { PrismStream } from './stream.js';

/** Where `prism serve` listens by default. */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';

/** The options of `new Prism()`: the `openai` client's, plus `baseUrl`. */
export interface PrismOptions extends ClientOptions {
  /**
   * The gateway's root URL, e.g. `https://gateway.futureagi.com` (`/v1` is appended; a URL that
   * already ends in `/v1` is used as it is). Default: `PRISM_BASE_URL`, else `http://127.0.0.1:8080`.
   */
  baseUrl?: string | null | undefined;
  /** The same as `baseUrl` (the `openai` package's spelling); `baseUrl` wins if both are given. */
  baseURL?: string | null | undefined;
  /** A Prism client key (`sk-prism-…`). Default: `PRISM_API_KEY`. */
  apiKey?: ClientOptions['apiKey'];
}

function readEnv(name: string): string | undefined {
  const value = typeof process === 'undefined' ? undefined : process.env?.[name]?.trim();
  return value ? value : undefined;
}

/** The Chat Completions API root for a gateway URL: `<root>/v1`. */
export function gatewayApiUrl(base: string): string {
  const trimmed = base.trim().replace(/\/+$/, '');
  return /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}

/** `client.chat.completions`, with Prism's streams. */
export class PrismCompletions extends Completions {
  /**
   * Creates a chat completion. With `stream: true` it resolves to a `PrismStream`: iterate it for
   * `chat.completion.chunk`s; it throws `StreamTruncatedError` if the stream ends without
   * `data: [DONE]`, and the gateway's error events as `GuardrailBlockedError` or
   * `PrismStreamError`. Without, it resolves to the `ChatCompletion` (see `prismMetadata()`).
   */
  override create(body: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): APIPromise<ChatCompletion>;
  override create(body: ChatCompletionCreateParamsStreaming, options?: RequestOptions): APIPromise<PrismStream>;
  override create(
    body: ChatCompletionCreateParamsBase,
    options?: RequestOptions,
  ): APIPromise<PrismStream | ChatCompletion>;
  override create(
    body: ChatCompletionCreateParamsBase,
    options?: RequestOptions,
  ): APIPromise<PrismStream | ChatCompletion> {
    const promise = super.create(body, options) as APIPromise<Stream<ChatCompletionChunk> | ChatCompletion>;
    return promise._thenUnwrap((data, props): PrismStream | ChatCompletion => {
      if (body.stream) return new PrismStream(props.response, props.controller, this._client);
      return attachMetadata(data as ChatCompletion, metadataFromHeaders(props.response.headers));
    });
  }

  /**
   * The stream manager: `for await (const chunk of s)`, `s.textStream`, `s.on('content', …)`,
   * `await s.finalChatCompletion()`, or `s.finalCompletion()` once read. It always requests
   * `stream_options.include_usage`, so the final completion has `usage`; it never yields the
   * usage-only chunk (see `PrismChatCompletionStream`). Awaiting the call is harmless.
   */
  override stream<Params extends ChatCompletionStreamParams, ParsedT = ExtractParsedContentFromParams<Params>>(
    body: Params,
    options?: RequestOptions,
  ): PrismChatCompletionStream<ParsedT> {
    return PrismChatCompletionStream.start<ParsedT>(this._client, body, options);
  }
}

/** `client.chat`, with `PrismCompletions`. */
export class PrismChat extends Chat {
  override completions: PrismCompletions = new PrismCompletions(this._client);
}

/**
 * A client for a Prism gateway: the `openai` package's `OpenAI` client (every resource and
 * option of it works), pointed at `<baseUrl>/v1`, with Prism's streams and errors.
 *
 * ```ts
 * const client = new Prism({ apiKey: 'sk-prism-…', baseUrl: 'https://gateway.futureagi.com' });
 * ```
 */
export class Prism extends OpenAI {
  override chat: PrismChat = new PrismChat(this);

  constructor({ baseUrl, baseURL, apiKey, organization = null, project = null, ...rest }: PrismOptions = {}) {
    const key = apiKey ?? readEnv('PRISM_API_KEY');
    if (!key) {
      throw new OpenAIError(
        'Prism needs a client key: pass `new Prism({ apiKey })` or set the PRISM_API_KEY environment variable',
      );
    }
    const base = baseUrl ?? baseURL ?? readEnv('PRISM_BASE_URL') ?? DEFAULT_BASE_URL;
    super({ ...rest, apiKey: key, baseURL: gatewayApiUrl(base), organization, project });
  }

  /** A 403 from a guardrail becomes a `GuardrailBlockedError` (still a `PermissionDeniedError`). */
  protected override makeStatusError(
    status: number,
    error: object,
    message: string | undefined,
    headers: Headers,
  ): APIError {
    const inner = (error as { error?: unknown } | undefined)?.error;
    if (status === 403 && isGuardrailError(inner)) {
      return new GuardrailBlockedError('input', inner, message, headers);
    }
    return super.makeStatusError(status, error, message, headers);
  }
}
