// PostgreSQL going away under load, with two replicas on it (and Redis for limits and
// budgets): the replicas keep serving keys they know from their snapshot and caches, buffer
// the usage of every call they answered, and write all of it once the database is back; the
// configuration poll recovers by itself. Nothing crashes, no usage record is lost.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { OpenAIMock, startGateway, standardConfig, chat, chatBody, sleep, TEST_JWT_SECRET } from './harness.mjs';
import { RedisServer, privatePostgres } from './services.mjs';

const T = { timeout: 180_000 };
let mock;
let redis;
let pg;
const gws = [];

before(async () => {
  mock = new OpenAIMock({ anyModel: true });
  await mock.start();
  redis = await new RedisServer().start();
  pg = await privatePostgres();
  const env = {
    DATABASE_URL: pg.url,
    REDIS_ADDRESS: `127.0.0.1:${redis.port}`,
    ADMIN_JWT_SECRET: TEST_JWT_SECRET,
    LLMGW_MASTER_KEY: 'cd'.repeat(32),
    LLMGW_USAGE_FLUSH_MS: '50',
  };
  gws.push(await startGateway({ config: standardConfig(mock.baseUrl), env, mockKey: mock.apiKey,
    keys: { limited: { rpm: 100000, budget: 1000 } } }));
  gws.push(await startGateway({ config: standardConfig(mock.baseUrl), env, mockKey: mock.apiKey }));
});

after(async () => {
  for (const gw of gws) await gw?.cleanup();
  await redis?.cleanup();
  await pg?.stop().catch(() => {});
  await mock?.stop();
});

async function usageRows(id) {
  return Number(await pg.query(`SELECT count(*) FROM usage_records WHERE key_id = '${id}'`));
}

test('PostgreSQL stopped and restarted mid-load: serving goes on, every answered call is recorded', T, async () => {
  const { key, id } = gws[0].keys.limited;
  // Warm both replicas' key caches and the Redis ledger (seeded from the store).
  for (const gw of gws) assert.equal((await chat(gw.port, key, chatBody('gpt-4o-mini', 'warm'))).status, 200);

  let answered = 2;
  let stop = false;
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      const r = await chat(gws[i % 2].port, key, chatBody('gpt-4o-mini', `load ${i}`),
        { headers: { 'x-request-id': `out-${i}-${Date.now()}` } });
      assert.equal(r.status, 200, `call ${i} during the outage: ${r.text}`);
      answered++;
      await sleep(5);
    }
  })();
  await sleep(300);
  await pg.pause();
  await sleep(2_000);  // calls keep being answered with the database down
  const duringOutage = answered;
  await pg.resume();
  await sleep(1_000);
  stop = true;
  await load;
  assert.ok(duringOutage > 20, `calls answered while PostgreSQL was down: ${duringOutage}`);
  for (const gw of gws) assert.equal(gw.exit, null, 'no replica died');

  // Everything answered ends up in PostgreSQL, once.
  const deadline = Date.now() + 60_000;
  let rows = 0;
  while (Date.now() < deadline) {
    rows = await usageRows(id);
    if (rows >= answered) break;
    await sleep(250);
  }
  if (rows !== answered) {
    const ids = (await pg.query(`SELECT client_request_id FROM usage_records WHERE key_id = '${id}'`)).split('\n');
    const seen = new Set(ids.map((x) => Number(x.split('-')[1])));
    const missing = [];
    for (let i = 0; i < answered - 2; i++) if (!seen.has(i)) missing.push(i);
    console.log('missing', JSON.stringify(missing), 'of', answered - 2, 'ids sample', ids.slice(0, 3));
    for (const gw of gws) {
      console.log(gw.logLines().filter((l) => l.level !== 'info' || /usage|spool|stopped/.test(l.msg))
        .map((l) => JSON.stringify(l)).join('\n'));
    }
  }
  assert.equal(rows, answered, 'one usage row per answered call');
  const spend = await pg.query(`SELECT sum(requests) FROM spend_daily WHERE key_id = '${id}'`);
  assert.equal(Number(spend), answered, 'spend_daily agrees with the usage rows');
  // The configuration poll recovered: a change made now reaches both replicas.
  assert.ok(gws[0].logLines().some((l) => l.msg === 'config reload failed; serving the last snapshot'));
  assert.ok(gws[0].logLines().some((l) => l.msg === 'config store reachable again'));
});

test('a replica killed during the outage replays its own spool at restart, whatever the others wrote', T, async () => {
  const { key, id } = gws[0].keys.limited;
  const before = await usageRows(id);
  await pg.pause();
  // Both replicas answer calls they cannot record yet; A is then killed with its records in
  // its spool. B writes its own after the database returns, moving B's marks past A's
  // sequence numbers: A's replay must still write every one of its records.
  let answered = 0;
  for (let i = 0; i < 40; i++) {
    const r = await chat(gws[i % 2].port, key, chatBody('gpt-4o-mini', `spooled ${i}`));
    assert.equal(r.status, 200, r.text);
    answered++;
  }
  await gws[0].kill();
  await pg.resume();
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (await usageRows(id)) < before + 20) await sleep(200);
  assert.equal(await usageRows(id), before + 20, 'B wrote its 20');
  await gws[0].serve();
  while (Date.now() < deadline && (await usageRows(id)) < before + answered) await sleep(200);
  assert.equal(await usageRows(id), before + answered, 'A replayed its 20 at restart');
  assert.ok(gws[0].logLines().some((l) => l.msg === 'usage records replayed from the spool'));
});
