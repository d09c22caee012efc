// Nothing is lost when the gateway is killed: usage records are appended to a crash-safe
// spool (a memory-mapped ring per I/O thread) when the call ends, and replayed at the next
// start. The usage writer is told to wait a minute, so at the kill every record is only in
// the spools.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, chat, chatBody, waitUntil } from './harness.mjs';

const T = { timeout: 60_000 };
let s;

before(async () => {
  s = await startStack({ env: { LLMGW_USAGE_FLUSH_MS: '60000' }, keys: { main: { budget: '1000' } } });
});

after(async () => {
  await s?.close();
});

test('a killed gateway loses no usage record and no spend', T, async () => {
  let ok = 0;
  for (let round = 0; round < 15; round++) {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `crash ${round}-${i} [mock:prompt_tokens=100] [mock:completion_tokens=10]`))));
    for (const r of answers) {
      assert.equal(r.status, 200, r.text);
      ok++;
    }
  }
  assert.equal(ok, 300);
  assert.equal((await s.gw.usageRows()).length, 0, 'the writer has not flushed yet: the rows are only spooled');

  await s.gw.kill(); // SIGKILL: no drain, no flush
  assert.equal(s.gw.exit.signal, 'SIGKILL');

  await s.gw.serve({ threads: 1 }); // fewer threads: the second spool is still replayed
  await waitUntil(() => s.gw.stderr.includes('usage records replayed from the spool'), 10_000,
    'the replay log line');
  assert.match(s.gw.stderr, /"records":300\b/, s.gw.stderr);
  await s.gw.stop();
  assert.equal(s.gw.exit.code, 0);

  const rows = await s.gw.usageRows();
  assert.equal(rows.length, 300, 'one row per answered call, none twice');
  assert.ok(rows.every((r) => r.prompt_tokens === 100 && r.completion_tokens === 10));
  // CAST: PostgreSQL's SUM of integers is NUMERIC, which the harness reads as decimal text.
  const spend = await s.gw.sql(`SELECT CAST(SUM(requests) AS INTEGER) AS n FROM spend_daily WHERE key_id = '${s.gw.keys.main.id}'`);
  assert.equal(spend[0].n, 300, 'spend rows count every replayed call');

  // A second restart replays nothing more.
  await s.gw.serve({ threads: 2 });
  await s.gw.stop();
  assert.equal((await s.gw.usageRows()).length, 300);
});
