// The CommonJS side of typecheck.ts: under NodeNext a .cts file resolves the package through its
// "require" condition, so this checks dist/cjs/index.d.ts.
import { GuardrailBlockedError, Prism, type PrismChatCompletionStream } from '@futureagi/prism';

export async function commonJsUser(): Promise<number | undefined> {
  const client = new Prism({ baseURL: 'http://127.0.0.1:8080' });
  const s: PrismChatCompletionStream = client.chat.completions.stream({ model: 'demo/openai', messages: [] });
  try {
    return (await s.finalChatCompletion()).usage?.total_tokens;
  } catch (err) {
    if (err instanceof GuardrailBlockedError) return err.status;
    throw err;
  }
}
