// The product page's snippet, unchanged but for the key and base URL, which come from the
// environment (run-tests.sh points them at a `prism serve` on the embedded default).
import { Prism } from '@futureagi/prism';
const client = new Prism({ apiKey: process.env.PRISM_API_KEY, baseUrl: process.env.PRISM_BASE_URL });
const stream = await client.chat.completions.create({ model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Write a short poem' }], stream: true });
for await (const chunk of stream) {
  if (chunk.choices[0].delta.content) { process.stdout.write(chunk.choices[0].delta.content); }
}
const s = await client.chat.completions.stream({ model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Explain quantum computing' }] });
for await (const chunk of s) {
  if (chunk.choices[0].delta.content) { process.stdout.write(chunk.choices[0].delta.content); }
}
const completion = s.finalCompletion();          // note: not awaited on the page
console.log(`Total tokens: ${completion.usage.total_tokens}`);
