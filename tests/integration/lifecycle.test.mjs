// Process life: /healthz and /readyz, SIGTERM on an idle gateway, and SIGTERM during an
// in-flight stream (the stream finishes, new connections are refused, exit status 0, the
// usage row is written).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, request, stream, chatBody, sseChunks, sseData, sleep, connect } from './harness.mjs';

const T = { timeout: 40_000 };
const stacks = [];

after(async () => {
  for (const st of stacks) await st.close();
});

async function stack(env = {}) {
  const st = await startStack({ env });
  stacks.push(st);
  return st;
}

test('healthz and readyz answer 200 with a running gateway; SIGTERM when idle exits 0 quickly', T, async () => {
  const s = await stack();
  const h = await request(s.gw.port, { path: '/healthz' });
  assert.equal(h.status, 200);
  const r = await request(s.gw.port, { path: '/readyz' });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { status: 'ready', checks: { store: 'up', archive: 'up' } }, 'no Redis: not reported');
  const t0 = Date.now();
  const ex = await s.gw.stop({ timeoutMs: 5_000 });
  assert.deepEqual(ex, { code: 0, signal: null }, `stderr tail: ${s.gw.stderr.slice(-2000)}`);
  assert.ok(Date.now() - t0 < 3_000, `idle shutdown took ${Date.now() - t0} ms`);
  const starts = s.gw.logLines();
  assert.ok(starts.length > 0, `no JSON start-up line on stderr: ${s.gw.stderr}`);
});

test('SIGTERM during an in-flight stream lets it finish, refuses new connections, exits 0', T, async () => {
  const s = await stack({ LLMGW_SHUTDOWN_GRACE_MS: '15000' });
  const chunks = 20;
  let signalled = 0;
  const streaming = stream(s.gw.port, {
    body: chatBody('gpt-4o-mini', `drain [mock:chunks=${chunks}] [mock:chunk_delay_ms=100]`, { stream: true }),
    headers: { authorization: `Bearer ${s.key}`, 'x-request-id': 'drain-1' },
    timeoutMs: 20_000,
    onData: (_d, all) => {
      if (!signalled && sseData(all).length >= 2) {
        signalled = Date.now();
        process.kill(s.gw.pid, 'SIGTERM');
      }
    },
  });
  // While draining, new connections must not be served.
  const refused = (async () => {
    await waitSignal();
    await sleep(300);
    try {
      const c = await connect(s.gw.port, 1_000);
      c.destroy();
      try {
        const r = await request(s.gw.port, { path: '/readyz', timeoutMs: 1_000 });
        return `a new connection was accepted and /readyz answered ${r.status}`;
      } catch (e) {
        return `accepted-then-closed (${e.code ?? e.message})`;
      }
    } catch (e) {
      return `refused (${e.code ?? e.message})`;
    }
  })();
  async function waitSignal() {
    const deadline = Date.now() + 10_000;
    while (!signalled && Date.now() < deadline) await sleep(10);
  }

  const r = await streaming;
  assert.ok(signalled, 'the stream never started');
  assert.equal(r.status, 200);
  assert.ok(r.complete, `the in-flight stream was cut by SIGTERM: ${r.error}`);
  const content = sseChunks(r.raw).map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, Array.from({ length: chunks }, (_, i) => (i ? ` tok${i}` : 'tok0')).join(''));
  assert.equal(sseData(r.raw).at(-1), '[DONE]');

  const newConn = await refused;
  assert.ok(!newConn.startsWith('a new connection was accepted and /readyz answered 200'),
    `after SIGTERM the gateway must stop accepting: ${newConn}`);

  const ex = await s.gw.stop({ signal: null, timeoutMs: 10_000 }); // already signalled
  assert.deepEqual(ex, { code: 0, signal: null }, `stderr tail: ${s.gw.stderr.slice(-2000)}`);
  const rows = await s.gw.usageFor('drain-1');
  assert.deepEqual(rows.map((r) => [r.rid, r.completion_tokens, r.stream]), [['drain-1', chunks, 1]]);
});
