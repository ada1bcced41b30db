/**
 * `PrismStream`: the chunks of `chat.completions.create({ stream: true })`, read from the SSE body
 * by this package instead of the `openai` package's reader, so that a stream which ends without
 * `data: [DONE]` is an error (`StreamTruncatedError`) rather than a quietly shorter answer, and
 * the gateway's error events become typed errors.
 */
import { APIError, OpenAIError } from 'openai';
import { Stream } from 'openai/streaming';
import type OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';

import { streamEventError, truncatedByClose, type PrismErrorObject } from './errors.js';
import { metadataFromHeaders, type PrismMetadata } from './metadata.js';

/** One Server-Sent Event. */
export interface SseEvent {
  event: string | null;
  data: string;
}

/**
 * A `Stream<ChatCompletionChunk>` (the `openai` package's class, so `tee()`,
 * `toReadableStream()` and `controller` work as usual) that throws on truncation and on error
 * events, and carries the gateway's `metadata`.
 */
export class PrismStream extends Stream<ChatCompletionChunk> {
  /** How the gateway served this stream (provider, attempts, cache, request id, warnings). */
  readonly metadata: PrismMetadata;
  /** The HTTP response the chunks are read from. */
  readonly response: Response;

  constructor(response: Response, controller: AbortController, client?: OpenAI) {
    let consumed = false;
    const iterator = (): AsyncIterator<ChatCompletionChunk> => {
      if (consumed) {
        throw new OpenAIError('Cannot iterate over a consumed stream, use `.tee()` to split the stream.');
      }
      consumed = true;
      return chatCompletionChunks(response, controller);
    };
    super(iterator, controller, client);
    this.response = response;
    this.metadata = metadataFromHeaders(response.headers);
  }
}

function isAbortError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

/** The chunks of a Chat Completions SSE body; throws unless it ends with `data: [DONE]`. */
async function* chatCompletionChunks(
  response: Response,
  controller: AbortController,
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const headers = response.headers;
  let finished = false;
  let chunks = 0;
  try {
    if (!response.body) throw new OpenAIError('The gateway answered a streaming request without a body.');
    let sawDone = false;
    try {
      for await (const sse of sseEvents(response.body)) {
        if (sawDone) continue; // read on to the end, so that the connection can be reused
        if (sse.data === '[DONE]') {
          sawDone = true;
          continue;
        }
        let data: unknown;
        try {
          data = JSON.parse(sse.data);
        } catch {
          throw new OpenAIError(`The gateway sent a stream event that is not JSON: ${sse.data.slice(0, 200)}`);
        }
        if (typeof data === 'object' && data !== null && 'error' in data && data.error) {
          throw streamEventError(data.error as PrismErrorObject, headers);
        }
        chunks += 1;
        yield data as ChatCompletionChunk;
      }
    } catch (err) {
      if (err instanceof OpenAIError || controller.signal.aborted || isAbortError(err)) throw err;
      // The connection failed under the body (reset, socket closed mid-chunk).
      const truncated = truncatedByClose(headers, chunks);
      (truncated as { cause?: unknown }).cause = err;
      throw truncated;
    }
    finished = true;
    if (!sawDone && !controller.signal.aborted) throw truncatedByClose(headers, chunks);
  } catch (err) {
    // The caller aborted (`stream.controller.abort()`, or a `break` upstream of us): end quietly.
    if (!(err instanceof APIError) && (controller.signal.aborted || isAbortError(err))) return;
    throw err;
  } finally {
    // A `break`, a `return` or an error before the end: stop the request and free the connection.
    if (!finished) controller.abort();
  }
}

/** Parses a `text/event-stream` body into events (CRLF, CR and LF line ends; comments skipped). */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  let event: string | null = null;
  let ended = false;
  const field = (line: string): SseEvent | null => {
    if (line === '') {
      if (data.length === 0) {
        event = null;
        return null;
      }
      const dispatched = { event, data: data.join('\n') };
      data = [];
      event = null;
      return dispatched;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') data.push(value);
    else if (name === 'event') event = value;
    return null;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        buffer += decoder.decode();
        // A last line without its line end still counts; an event without its blank line does not.
        if (buffer !== '') field(buffer.replace(/\r$/, ''));
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const ch = buffer.charCodeAt(i);
        if (ch !== 10 && ch !== 13) continue;
        if (ch === 13 && i + 1 === buffer.length) break; // a CR at the end may be half a CRLF
        const line = buffer.slice(start, i);
        if (ch === 13 && buffer.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
        const dispatched = field(line);
        if (dispatched) yield dispatched;
      }
      buffer = buffer.slice(start);
    }
  } finally {
    if (!ended) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
