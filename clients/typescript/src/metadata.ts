/**
 * Gateway metadata: what Prism says about how it served a request, from its response headers.
 */

/** How Prism served one request, parsed from its `x-prism-*` and `x-request-id` headers. */
export interface PrismMetadata {
  /** The configured provider that answered (`x-prism-provider`), e.g. `sim-openai`; `null` when none did (a cache hit). */
  provider: string | null;
  /** Upstream attempts made, retries and fallbacks included (`x-prism-attempts`); `0` for a cache hit. */
  attempts: number | null;
  /** `hit`, `miss` or `bypass` (`x-prism-cache`); `null` when the gateway has no cache configured. */
  cache: 'hit' | 'miss' | 'bypass' | (string & {}) | null;
  /** The gateway's request id (`x-request-id`), the one in its logs. */
  requestId: string | null;
  /** Monitor-mode guardrail rules that fired (`x-prism-guardrail-warnings`); on a stream, input rules only. */
  guardrailWarnings: string[];
  /** All the response headers. */
  headers: Headers;
}

const attached = new WeakMap<object, PrismMetadata>();

/** Parses the gateway headers of a response. */
export function metadataFromHeaders(headers: Headers): PrismMetadata {
  const attempts = headers.get('x-prism-attempts');
  const parsed = attempts === null ? NaN : Number.parseInt(attempts, 10);
  const warnings = headers.get('x-prism-guardrail-warnings');
  return {
    provider: headers.get('x-prism-provider'),
    attempts: Number.isFinite(parsed) ? parsed : null,
    cache: headers.get('x-prism-cache'),
    requestId: headers.get('x-request-id'),
    guardrailWarnings: warnings
      ? warnings
          .split(',')
          .map((rule) => rule.trim())
          .filter((rule) => rule.length > 0)
      : [],
    headers,
  };
}

/** Remembers the metadata of the response `value` came from (a completion or a stream). */
export function attachMetadata<T extends object>(value: T, metadata: PrismMetadata): T {
  attached.set(value, metadata);
  return value;
}

/** Anything `prismMetadata` can read. */
export type MetadataSource = Response | Headers | { metadata: PrismMetadata | null } | object;

/**
 * The gateway metadata of a response: pass a `Response` (e.g. from `.withResponse()` or
 * `.asResponse()`), its `Headers`, a completion returned by this client's `create()`, or a stream.
 * Returns `null` for an object this client did not produce (or a stream that has not connected yet).
 */
export function prismMetadata(source: MetadataSource): PrismMetadata | null {
  if (typeof Headers !== 'undefined' && source instanceof Headers) return metadataFromHeaders(source);
  if (typeof Response !== 'undefined' && source instanceof Response) return metadataFromHeaders(source.headers);
  const known = attached.get(source);
  if (known) return known;
  if ('metadata' in source) {
    const metadata = (source as { metadata: unknown }).metadata;
    if (metadata && typeof metadata === 'object' && 'headers' in metadata) return metadata as PrismMetadata;
  }
  return null;
}
