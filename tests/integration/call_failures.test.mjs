// An internal error at any stage of an inference call answers 500 without detail and gives
// back everything the call held. The gateway is started with LLMGW_TEST_FAULT_AFTER=<stage>
// (its next call throws right after that stage), once per stage, on the in-process limiter and
// ledger and again with Redis (REDIS_ADDRESS): then a second call of the same key proves that
// nothing leaked.
//
// The key: max_concurrent 1 (a leaked slot refuses the next call), a budget that one call's
// hold fits and two do not (a leaked hold refuses it with insufficient_quota), and an RPM
// limit of 1 before the provider is called (the failed call's count must be taken back) or 2
// after (the provider did the work: the call counts, is billed and has its usage row).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  startAdminStack, chat, waitUntil, sleep, dec,
} from './harness.mjs';
import { RedisServer } from './services.mjs';

const T = { timeout: 180_000 };

// Before the provider is called, then after.
const BEFORE = ['authenticated', 'inspected', 'routed', 'admitted', 'reserved'];
const AFTER = ['called', 'costed', 'settled', 'limits_finished', 'recorded'];

// Input $1 and output $1000 per million tokens: a hold is about max_tokens × $0.001.
const config = (baseUrl) => ({
  providers: [{ name: 'mock', type: 'openai', base_url: baseUrl, api_key: { raw: '${MOCK_KEY}' } }],
  models: [{ name: 'held', provider: 'mock', upstream_model: 'gpt-4o-mini', pricing_model: 'held-prices' }],
  prices: [{ model: 'held-prices', components: { raw:
    '[{direction: "input", unit: "1m_tokens", price: "1"}, {direction: "output", unit: "1m_tokens", price: "1000"}]' } }],
});

// 1000 output tokens hold about $1.00 (+ the prompt bound): one hold fits $1.50, two do not.
const body = (tag, stream = false) => ({
  model: 'held', max_tokens: 1000, stream,
  messages: [{ role: 'user', content: `${tag} [mock:prompt_tokens=10] [mock:completion_tokens=5]` }],
});
const BUDGET = '1.50';

let redis;
before(async () => {
  redis = await new RedisServer().start();
});
after(async () => {
  await redis?.cleanup();
});

let redisDb = 0;

async function runStage(stage, { shared, stream }) {
  // Each gateway its own Redis database: one's usage queue is not drained into another's store.
  const env = { LLMGW_TEST_FAULT_AFTER: stage, LLMGW_TEST_FAULT_COUNT: '1', LLMGW_USAGE_FLUSH_MS: '50',
    ...(shared ? { REDIS_ADDRESS: `127.0.0.1:${redis.port}`, REDIS_DB: String(redisDb++ % 16) } : {}) };
  const s = await startAdminStack({ config, env, mockOptions: { anyModel: true } });
  const ctx = `${stage} (${shared ? 'Redis' : 'in-process'}${stream ? ', stream' : ''})`;
  try {
    const before = AFTER.indexOf(stage) < 0;
    const created = await s.req('POST', '/admin/keys', { name: `fault-${stage}`, max_concurrent: 1,
      rpm_limit: before ? 1 : 2, budget_usd: BUDGET });
    assert.equal(created.status, 201, created.text);
    const key = created.json.key;

    s.mock.clearRequests();
    const first = await chat(s.gw.port, key, body('first', stream), { headers: { 'x-request-id': `first-${stage}` } });
    if (before) {
      assert.equal(first.status, 500, `${ctx}: ${first.text}`);
      assert.equal(first.json?.error?.type, 'server_error', `${ctx}: ${first.text}`);
      assert.equal(first.json.error.message, 'The gateway failed to process the request.', ctx);
      assert.doesNotMatch(first.text, /fault|inject|LLMGW_|exception/i, `${ctx}: no detail leaks`);
      assert.equal(s.mock.recorded().length, 0, `${ctx}: nothing reached the provider`);
    } else {
      // The answer had left before the fault: the client has it whole.
      assert.equal(first.status, 200, `${ctx}: ${first.text}`);
      assert.equal(s.mock.recorded().length, 1, ctx);
      const rows = await waitUntil(async () => {
        const r = await s.gw.usageFor(`first-${stage}`);
        return r.length > 0 ? r : null;
      }, 5_000, `${ctx}: the usage row of the failed call`);
      assert.equal(rows.length, 1, `${ctx}: one usage row`);
      assert.equal(rows[0].status, 200, ctx);
      assert.equal(Number(rows[0].prompt_tokens), 10, ctx);
      assert.equal(Number(rows[0].completion_tokens), 5, ctx);
      // 10 × $1/M + 5 × $1000/M
      assert.equal(dec(rows[0].cost_usd), dec('0.00501'), `${ctx}: billed at its cost`);
    }
    assert.equal(s.gw.exit, null, `${ctx}: the gateway is still running`);
    await waitUntil(() => /"inference call failed"/.test(s.gw.stderr), 3_000, `${ctx}: the failure logged`);

    // The second call finds nothing of the first held. (With Redis, a settlement runs after the
    // answer: allow it a moment; a leaked hold or slot would refuse it for an hour.)
    let second;
    const deadline = Date.now() + 3_000;
    do {
      second = await chat(s.gw.port, key, body('second', stream));
      if (second.status === 200) break;
      await sleep(100);
    } while (Date.now() < deadline);
    assert.equal(second.status, 200, `${ctx}: the second call was refused: ${second.text}`);
    const remaining = Number(second.headers['x-ratelimit-remaining-requests']);
    assert.equal(remaining, 0, `${ctx}: the first call ${before ? 'was taken back' : 'counts'} ` +
      `(x-ratelimit-remaining-requests ${second.headers['x-ratelimit-remaining-requests']})`);
  } finally {
    await s.close();
  }
}

for (const shared of [false, true]) {
  test(`a throw after each stage answers 500 and releases the call's holds (${shared ? 'Redis' : 'in-process'})`, T,
    async () => {
      for (const stage of [...BEFORE, ...AFTER]) await runStage(stage, { shared, stream: false });
      // A streamed answer: the fault comes after the stream ended.
      await runStage('called', { shared, stream: true });
    });
}

test('an unknown LLMGW_TEST_FAULT_AFTER stage stops the start with a clear message', T, async () => {
  await assert.rejects(startAdminStack({ config, env: { LLMGW_TEST_FAULT_AFTER: 'nowhere' } }),
    /LLMGW_TEST_FAULT_AFTER: unknown stage `nowhere`/);
});
