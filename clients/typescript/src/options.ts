/** Types shared by the modules of this package, derived from the `openai` package's public API. */
import type OpenAI from 'openai';

/** Per-request options (`headers`, `signal`, `timeout`, `maxRetries`, …) of the `openai` package. */
export type RequestOptions = NonNullable<Parameters<OpenAI['chat']['completions']['retrieve']>[1]>;
