/**
 * `PrismChatCompletionStream`: what `client.chat.completions.stream()` returns. It is the `openai`
 * package's `ChatCompletionStream` (same events, same `finalChatCompletion()`), always asks for
 * `stream_options.include_usage`, and changes three things:
 *
 * - Iterating it yields only chunks that have at least one choice, so `chunk.choices[0].delta` is
 *   always safe. The usage-only chunk that `include_usage` produces is folded into the chunk
 *   before it that carried a `finish_reason` (as `usage`), and into the final completion.
 * - `finalCompletion()` returns the assembled completion synchronously once the stream has been
 *   read to the end, and throws if it has not.
 * - `metadata` (and `connected()`) give the gateway's headers.
 */
import { APIUserAbortError, OpenAIError } from 'openai';
import type OpenAI from 'openai';
import { ChatCompletionStream, type ChatCompletionStreamParams } from 'openai/lib/ChatCompletionStream';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParams,
  ChatCompletionCreateParamsStreaming,
  ParsedChatCompletion,
} from 'openai/resources/chat/completions';

import { prismMetadata, type PrismMetadata } from './metadata.js';
import type { RequestOptions } from './options.js';

type Waiter = {
  resolve: (result: IteratorResult<ChatCompletionChunk, undefined>) => void;
  reject: (err: unknown) => void;
};

/** The stream manager of `client.chat.completions.stream()`. */
export class PrismChatCompletionStream<ParsedT = null>
  extends ChatCompletionStream<ParsedT>
  implements AsyncIterable<ChatCompletionChunk>
{
  #metadata: PrismMetadata | null = null;
  #final: ParsedChatCompletion<ParsedT> | null = null;
  #failure: { error: unknown } | null = null;
  #finished = false;
  #queue: ChatCompletionChunk[] = [];
  #waiters: Waiter[] = [];
  /** A chunk with a `finish_reason`, kept until we know whether a usage-only chunk follows it. */
  #held: ChatCompletionChunk | null = null;
  #onConnect: Array<() => void> = [];

  constructor(params: ChatCompletionCreateParams | null) {
    super(params);
    // Listen from the start: chunks that arrive before the caller starts iterating are kept.
    this.on('connect', () => {
      for (const wake of this.#onConnect.splice(0)) wake();
    });
    this.on('chunk', (chunk) => this.#onChunk(chunk));
    this.on('finalChatCompletion', (completion) => {
      this.#final = completion as ParsedChatCompletion<ParsedT>;
    });
    this.on('end', () => this.#settle(null));
    this.on('error', (err) => this.#settle({ error: err }));
    this.on('abort', (err) => this.#settle({ error: err }));
  }

  /** Starts the request; used by `client.chat.completions.stream()`. */
  static start<ParsedT>(
    client: OpenAI,
    params: ChatCompletionStreamParams,
    options?: RequestOptions,
  ): PrismChatCompletionStream<ParsedT> {
    const body: ChatCompletionCreateParamsStreaming = {
      ...params,
      stream: true,
      stream_options: { ...params.stream_options, include_usage: true },
    };
    const runner = new PrismChatCompletionStream<ParsedT>(body);
    runner._run(() => runner._runChatCompletion(client, body, options));
    return runner;
  }

  protected override _createChatCompletion(
    client: OpenAI,
    params: ChatCompletionCreateParams,
    options?: RequestOptions,
  ): Promise<ParsedChatCompletion<ParsedT>> {
    // The parent only calls `client.chat.completions.create`; this one also keeps the metadata
    // of the stream it returns.
    const capturing = {
      chat: {
        completions: {
          create: (body: ChatCompletionCreateParamsStreaming, opts?: RequestOptions) =>
            client.chat.completions.create(body, opts)._thenUnwrap((stream) => {
              this.#metadata = prismMetadata(stream);
              return stream;
            }),
        },
      },
    };
    return super._createChatCompletion(capturing as unknown as OpenAI, params, options);
  }

  /** The gateway metadata of this stream; `null` until the response head has arrived. */
  get metadata(): PrismMetadata | null {
    return this.#metadata;
  }

  /**
   * Resolves with the gateway metadata once the response head has arrived; rejects with the
   * request's error (`AuthenticationError`, `GuardrailBlockedError`, …) if it was refused.
   */
  connected(): Promise<PrismMetadata> {
    return new Promise((resolve, reject) => {
      const settle = () => {
        if (this.#metadata) resolve(this.#metadata);
        else if (this.#failure) reject(this.#failure.error);
        else reject(new OpenAIError('the stream ended before the gateway answered'));
      };
      if (this.#metadata || this.#finished) settle();
      else this.#onConnect.push(settle);
    });
  }

  /** The text deltas of the first choice, as they arrive (consumes the stream). */
  get textStream(): AsyncIterable<string> {
    const chunks: AsyncIterable<ChatCompletionChunk> = this;
    return {
      async *[Symbol.asyncIterator]() {
        for await (const chunk of chunks) {
          const text = chunk.choices.find((choice) => choice.index === 0)?.delta.content;
          if (text) yield text;
        }
      },
    };
  }

  /**
   * The assembled completion (message, tool calls, finish reason, `usage`), once the stream has
   * been read to the end. Throws the stream's error if it failed, and an `OpenAIError` if it is
   * still running: iterate it first, or `await finalChatCompletion()` instead.
   */
  finalCompletion(): ParsedChatCompletion<ParsedT> {
    if (this.#final) return this.#final;
    if (this.#failure) throw this.#failure.error;
    throw new OpenAIError(
      'finalCompletion() was called before the stream finished: read the stream (or textStream) to the end first, or use `await stream.finalChatCompletion()`',
    );
  }

  override [Symbol.asyncIterator](): AsyncIterator<ChatCompletionChunk> {
    return {
      next: () => {
        const chunk = this.#queue.shift();
        if (chunk) return Promise.resolve({ value: chunk, done: false });
        if (this.#finished) {
          const failure = this.#failure;
          if (failure && !(failure.error instanceof APIUserAbortError)) return Promise.reject(failure.error);
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
      },
      return: () => {
        // `break` out of the loop: stop the request (this releases the connection).
        if (!this.#finished) this.abort();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #onChunk(chunk: ChatCompletionChunk): void {
    if (chunk.choices.length === 0) {
      // The include_usage chunk (or another choice-less one): never yielded, so that
      // `chunk.choices[0]` always exists; its usage goes on the finish chunk being held.
      if (chunk.usage && this.#held) this.#held = { ...this.#held, usage: chunk.usage };
      return;
    }
    this.#release();
    if (chunk.choices.some((choice) => choice.finish_reason)) this.#held = chunk;
    else this.#deliver(chunk);
  }

  #release(): void {
    if (this.#held) {
      const held = this.#held;
      this.#held = null;
      this.#deliver(held);
    }
  }

  #deliver(chunk: ChatCompletionChunk): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ value: chunk, done: false });
    else this.#queue.push(chunk);
  }

  #settle(failure: { error: unknown } | null): void {
    if (this.#finished) return;
    this.#release();
    this.#finished = true;
    this.#failure = failure;
    for (const waiter of this.#waiters.splice(0)) {
      if (failure && !(failure.error instanceof APIUserAbortError)) waiter.reject(failure.error);
      else waiter.resolve({ value: undefined, done: true });
    }
    for (const wake of this.#onConnect.splice(0)) wake();
  }
}
