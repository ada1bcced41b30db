// A tiny OpenAI-style streaming server the tests run in-process. It stands in for an upstream
// (the `fake/openai` model of prism-test.toml points at it) and, to test what a client does when
// the gateway's own stream is cut, for the gateway itself. The last user message picks the
// behaviour:
//   "cut"     two content chunks, then the body ends cleanly without `data: [DONE]`
//   "reset"   two content chunks, then the socket is destroyed mid-body
//   "error"   one content chunk, then an error event (`upstream_error` / `upstream_status_500`)
//   "endless" a content chunk every 20 ms until the client goes away (`closed` counts those)
//   anything else: a complete stream (role, two content chunks, finish, usage, `[DONE]`)
import http from 'node:http';

function chunk(model, delta, finish = null, extra = {}) {
  const body = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: 1735689600,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

export async function startFakeServer(port = 0) {
  const state = { requests: 0, closed: 0, open: 0, onClose: [] };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      state.requests += 1;
      let body = {};
      try {
        body = JSON.parse(raw);
      } catch {
        // not JSON: treated as the default behaviour
      }
      const messages = Array.isArray(body.messages) ? body.messages : [];
      const last = String(messages.at(-1)?.content ?? '').trim();
      const model = body.model ?? 'fake';
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-request-id': 'req_fake', 'x-prism-provider': 'fake' });
      res.flushHeaders();
      res.write(chunk(model, { role: 'assistant', content: '' }));
      if (last === 'endless') {
        state.open += 1;
        const timer = setInterval(() => res.write(chunk(model, { content: 'tick ' })), 20);
        res.on('close', () => {
          clearInterval(timer);
          state.open -= 1;
          state.closed += 1;
          for (const wake of state.onClose.splice(0)) wake();
        });
        return;
      }
      res.write(chunk(model, { content: 'Hello' }));
      if (last === 'error') {
        res.end(
          `data: ${JSON.stringify({ error: { message: 'upstream answered 500', type: 'upstream_error', param: null, code: 'upstream_status_500' } })}\n\n`,
        );
        return;
      }
      res.write(chunk(model, { content: ' there' }));
      if (last === 'cut') {
        setTimeout(() => res.end(), 10);
        return;
      }
      if (last === 'reset') {
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      res.write(chunk(model, {}, 'stop'));
      res.write(
        `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1735689600, model, choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${address.port}`,
    state,
    /** Resolves at the next close of an "endless" response. */
    nextClose: () => new Promise((resolve) => state.onClose.push(resolve)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// `node fake-server.mjs PORT`: run it on its own (for poking at it by hand).
if (import.meta.url === `file://${process.argv[1]}`) {
  const fake = await startFakeServer(Number(process.argv[2] ?? 0));
  console.log(fake.url);
}
