// Compiled (never run) by run-tests.sh with `tsc --strict` against the built declarations, as a
// TypeScript user of the package sees them: the page snippet, errors and metadata type-check.
import OpenAI from 'openai';
import {
  GuardrailBlockedError,
  Prism,
  PrismStreamError,
  StreamTruncatedError,
  prismMetadata,
  type PrismChatCompletionStream,
  type PrismMetadata,
  type PrismStream,
} from '@futureagi/prism';

export async function pageSnippet(): Promise<void> {
  const client = new Prism({ apiKey: 'sk-prism-your-key', baseUrl: 'https://gateway.futureagi.com' });
  const stream: PrismStream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Write a short poem' }],
    stream: true,
  });
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) process.stdout.write(chunk.choices[0].delta.content);
  }
  const meta: PrismMetadata = stream.metadata;
  const provider: string | null = meta.provider;
  const s: PrismChatCompletionStream = await client.chat.completions.stream({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Explain quantum computing' }],
  });
  for await (const text of s.textStream) process.stdout.write(text);
  const completion = s.finalCompletion();
  console.log(`Total tokens: ${completion.usage?.total_tokens}`, provider, s.metadata?.requestId);
  const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
  const attempts: number | null | undefined = prismMetadata(plain)?.attempts;
  console.log(plain.choices[0]?.message.content, attempts);
}

export function classify(err: unknown): string {
  if (err instanceof GuardrailBlockedError) return `${err.stage} rule ${err.rule ?? '?'} (${err.status})`;
  if (err instanceof StreamTruncatedError) return `truncated: ${err.code ?? ''}`;
  if (err instanceof PrismStreamError) return `${err.type ?? ''}/${err.code ?? ''}`;
  if (err instanceof OpenAI.APIError) return `api error ${err.status ?? ''}`;
  return 'other';
}
