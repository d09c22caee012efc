// The audit log: one record per inference request — refusals by auth, routing and limits
// included — archived as gzip JSON Lines objects, in the local directory (the embedded
// default) and in S3 (s3rver behind tests/integration/s3.mjs's checking front). The records
// equal the requests sent; `full` keeps the bodies and `metadata` none; a gateway killed with
// SIGKILL under load loses no record and writes none twice; nor does an S3 store that goes
// down under load (right after storing an object it never acknowledged) and comes back on its
// port with its data.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import { startStack, startAdminStack, chat, chatBody, stream, authHeaders, request, sseChunks, runCliOk,
  waitUntil, within } from './harness.mjs';
import { startS3 } from './s3.mjs';

const T = { timeout: 120_000 };
const NAME_RE = /^\d{4}\/\d{2}\/\d{2}\/[A-Za-z0-9._-]+-\d{8}T\d{6}Z-\d{9}\.jsonl\.gz$/;
const stacks = [];

after(async () => {
  for (const s of stacks) await s.close();
});

async function stack(env, keys = { main: {} }) {
  const s = await startStack({ env: { LOGGING_SINK_FLUSH_INTERVAL: '1s', ...env }, keys });
  stacks.push(s);
  return s;
}

/** Every object under DATA_DIR/audit: {name, records}. Each must be gzip of JSON Lines. */
async function localObjects(gw) {
  const root = path.join(gw.dataDir, 'audit');
  const out = [];
  const walk = async (dir) => {
    let entries = [];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.jsonl.gz')) {
        const text = zlib.gunzipSync(await fsp.readFile(p)).toString('utf8');
        assert.ok(text.endsWith('\n'), `${p}: JSON Lines end with a newline`);
        const records = text.slice(0, -1).split('\n').map((l) => JSON.parse(l));
        out.push({ name: path.relative(root, p), file: p, records });
      }
    }
  };
  await walk(root);
  return out;
}

const byClientId = (objects) => {
  const m = new Map();
  for (const o of objects) for (const r of o.records) {
    if (!r.client_request_id) continue;
    m.set(r.client_request_id, [...(m.get(r.client_request_id) ?? []), r]);
  }
  return m;
};

function rid(h) {
  return { 'x-request-id': h };
}

test('local directory: one record per request on every exit path, equal to what was sent and billed', T, async () => {
  const s = await stack({ LOGGING_BODIES: 'full', LLMGW_MAX_BODY_BYTES: '4096' }, { main: {}, slow: { rpm: 1 } });
  const sent = {};
  const body1 = chatBody('gpt-4o-mini', 'audit one [mock:prompt_tokens=11] [mock:completion_tokens=3]');
  sent.a1 = await chat(s.gw.port, s.key, body1, { headers: rid('a1') });
  assert.equal(sent.a1.status, 200);
  sent.a2 = await stream(s.gw.port, { body: chatBody('gpt-4o-mini', 'audit stream', { stream: true }), headers: authHeaders(s.key, rid('a2')) });
  assert.equal(sent.a2.status, 200);
  sent.a3 = await chat(s.gw.port, 'sk-llmgw-not-a-key', chatBody('gpt-4o-mini', 'x'), { headers: rid('a3') });
  assert.equal(sent.a3.status, 401);
  sent.a4 = await chat(s.gw.port, s.key, chatBody('no-such-model', 'x'), { headers: rid('a4') });
  assert.equal(sent.a4.status, 404);
  const slow = s.gw.keys.slow.key;
  sent.a5 = await chat(s.gw.port, slow, chatBody('fast', 'first'), { headers: rid('a5') });
  assert.equal(sent.a5.status, 200);
  sent.a6 = await chat(s.gw.port, slow, chatBody('fast', 'second'), { headers: rid('a6') });
  assert.equal(sent.a6.status, 429);
  sent.a7 = await request(s.gw.port, { method: 'POST', path: '/v1/chat/completions', headers: authHeaders(s.key, rid('a7')), body: '{"model": ' });
  assert.equal(sent.a7.status, 400);
  sent.a8 = await request(s.gw.port, { method: 'POST', path: '/v1/chat/completions', headers: authHeaders(s.key, rid('a8')),
    body: chatBody('gpt-4o-mini', 'x'.repeat(5000)) });
  assert.equal(sent.a8.status, 413, 'refused by the HTTP layer, before the proxy');

  let objects = [];
  await waitUntil(async () => {
    objects = await localObjects(s.gw);
    return byClientId(objects).size >= 8;
  }, 15_000, 'eight audit records archived');
  for (const o of objects) assert.match(o.name, NAME_RE);
  const recs = byClientId(objects);
  for (const id of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8']) {
    assert.equal(recs.get(id)?.length, 1, `exactly one record for ${id}`);
  }
  const r = (id) => recs.get(id)[0];
  // The usage writer and the archiver run apart: the records may be archived before their
  // usage rows are written.
  let rows = [];
  await waitUntil(async () => {
    rows = await s.gw.usageRows();
    return ['a1', 'a2'].every((id) => rows.some((u) => u.client_request_id === id));
  }, 15_000, 'the usage rows of a1 and a2 written');
  const usage = (id) => rows.find((u) => u.client_request_id === id);

  assert.equal(r('a1').status, 200);
  assert.equal(r('a1').endpoint, 'chat.completions');
  assert.equal(r('a1').key_id, s.gw.keys.main.id);
  assert.equal(r('a1').key_name, 'main');
  assert.equal(r('a1').model, 'gpt-4o-mini');
  assert.equal(r('a1').provider, 'mock');
  assert.equal(r('a1').tokens.input, 11);
  assert.equal(r('a1').tokens.output, 3);
  assert.equal(r('a1').cost_usd, usage('a1').cost_usd);
  assert.equal(r('a1').request_id, usage('a1').request_id);
  assert.ok(r('a1').overhead_us >= 0 && r('a1').upstream_us > 0);
  assert.deepEqual(r('a1').request, body1, 'full: the request body as sent');
  assert.deepEqual(r('a1').response, sent.a1.json, 'full: the answer as the client got it');
  assert.equal(r('a2').stream, true);
  assert.ok(r('a2').ttft_us > 0, 'a stream has its time to first token');
  // A stream is kept as the message it assembles to, not as chunks.
  const chunks = sseChunks(sent.a2.raw);
  const streamed = chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
  assert.ok(streamed.length > 0);
  assert.equal(r('a2').response.object, 'chat.completion');
  assert.equal(r('a2').response.id, chunks[0].id);
  assert.equal(r('a2').response.choices[0].message.content, streamed);
  assert.equal(r('a2').response.choices[0].finish_reason, chunks.find((c) => c.choices?.[0]?.finish_reason).choices[0].finish_reason);
  assert.equal(r('a2').cost_usd, usage('a2').cost_usd);
  assert.equal(r('a3').status, 401);
  assert.equal(r('a3').key_id, undefined, 'no key on a refused key');
  assert.equal(r('a3').error_type, 'authentication_error');
  assert.equal(r('a4').status, 404);
  assert.equal(r('a4').model_requested, 'no-such-model');
  assert.equal(r('a5').alias, 'fast');
  assert.equal(r('a6').status, 429);
  assert.equal(r('a6').overhead_us, undefined, 'a refused call never reached a provider');
  assert.equal(r('a7').status, 400);
  assert.equal(r('a7').request, '{"model": ', 'a body that is not JSON is kept as a string');
  assert.equal(r('a8').status, 413);
  assert.equal(r('a8').endpoint, 'chat.completions');
  assert.equal(r('a8').error_type, 'invalid_request_error');
  assert.equal(r('a8').request, undefined, 'a body not read whole is not kept');

  // What the CLI prints is what the object holds.
  const file = objects.find((o) => o.records.some((x) => x.client_request_id === 'a1')).file;
  const cat = await runCliOk(['audit', 'cat', file], { env: s.gw.env });
  const printed = cat.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(printed, objects.find((o) => o.file === file).records);

  // Secrets never reach a record.
  const all = JSON.stringify(objects);
  assert.ok(!all.includes(s.key) && !all.includes(slow), 'no gateway key');
  assert.ok(!all.includes(s.mock.apiKey), 'no provider key');
});

test('metadata: no bodies', T, async () => {
  const s = await stack({ LOGGING_BODIES: 'metadata' });
  assert.equal((await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'meta only'), { headers: rid('m1') })).status, 200);
  let objects = [];
  await waitUntil(async () => byClientId(objects = await localObjects(s.gw)).has('m1'), 15_000, 'the record');
  const r = byClientId(objects).get('m1')[0];
  assert.equal(r.bodies, 'metadata');
  assert.equal(r.request, undefined);
  assert.equal(r.response, undefined);
  assert.equal(r.status, 200);
});

test('redacted: the configured paths are masked; a key\'s own mode wins over LOGGING_BODIES', T, async () => {
  const s = await startAdminStack({ env: { LOGGING_SINK_FLUSH_INTERVAL: '1s', LOGGING_BODIES: 'redacted' }, keys: { main: {} } });
  stacks.push(s);
  const made = {};
  for (const mode of ['full', 'metadata']) {
    const r = await s.req('POST', '/admin/keys', { name: `audit-${mode}`, audit_bodies: mode });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.audit_bodies, mode);
    made[mode] = r.json.key;
  }
  const bad = await s.req('POST', '/admin/keys', { name: 'audit-bad', audit_bodies: 'everything' });
  assert.equal(bad.status, 422, 'an unknown mode is refused');
  assert.equal(bad.json.error.param, 'audit_bodies');

  const secretWords = 'the launch code is 0000';
  const body = chatBody('gpt-4o-mini', secretWords, { temperature: 0.5 });
  assert.equal((await chat(s.gw.port, s.key, body, { headers: rid('r1') })).status, 200);
  const st = await stream(s.gw.port, { body: chatBody('gpt-4o-mini', secretWords, { stream: true }), headers: authHeaders(s.key, rid('r2')) });
  assert.equal(st.status, 200);
  const msgs = await stream(s.gw.port, { path: '/v1/messages', headers: { 'x-api-key': s.key, 'anthropic-version': '2023-06-01', ...rid('r3') },
    body: { model: 'gpt-4o-mini', max_tokens: 50, stream: true, system: secretWords, messages: [{ role: 'user', content: secretWords }] } });
  assert.equal(msgs.status, 200);
  const full = await chat(s.gw.port, made.full, body, { headers: rid('r4') });
  assert.equal(full.status, 200);
  const fullStream = await stream(s.gw.port, { path: '/v1/messages', headers: { 'x-api-key': made.full, 'anthropic-version': '2023-06-01', ...rid('r5') },
    body: { model: 'gpt-4o-mini', max_tokens: 50, stream: true, messages: [{ role: 'user', content: 'assemble me' }] } });
  assert.equal(fullStream.status, 200);
  assert.equal((await chat(s.gw.port, made.metadata, body, { headers: rid('r6') })).status, 200);
  // The key's mode changes through the admin API and holds from then on.
  const list = await s.req('GET', '/admin/keys?limit=100');
  const metaId = list.json.data.find((k) => k.name === 'audit-metadata').id;
  const patched = await s.req('PATCH', `/admin/keys/${metaId}`, { audit_bodies: null });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.json.audit_bodies, null);
  assert.equal((await chat(s.gw.port, made.metadata, body, { headers: rid('r7') })).status, 200);

  let recs = new Map();
  await waitUntil(async () => {
    recs = byClientId(await localObjects(s.gw));
    return ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7'].every((id) => recs.has(id));
  }, 15_000, 'the records');
  const r = (id) => recs.get(id).at(-1);
  for (const id of ['r1', 'r2', 'r3']) {
    assert.equal(r(id).bodies, 'redacted', id);
    assert.ok(!JSON.stringify(r(id)).includes('launch code'), `${id}: no message content`);
  }
  assert.equal(r('r1').request.model, 'gpt-4o-mini', 'the shape stays');
  assert.equal(r('r1').request.temperature, 0.5);
  assert.equal(r('r1').request.messages[0].role, 'user');
  assert.equal(r('r1').request.messages[0].content, '[redacted]');
  assert.equal(r('r1').response.choices[0].message.content, '[redacted]');
  assert.equal(r('r1').response.choices[0].finish_reason, 'stop');
  assert.equal(r('r2').response.object, 'chat.completion');
  assert.equal(r('r2').response.choices[0].message.content, '[redacted]');
  assert.equal(r('r3').request.system, '[redacted]');
  assert.equal(r('r3').response.type, 'message');
  assert.equal(r('r3').response.content[0].text, '[redacted]');
  assert.equal(r('r4').bodies, 'full');
  assert.deepEqual(r('r4').request, body);
  assert.deepEqual(r('r4').response, full.json);
  // A Messages stream is kept as the Messages answer it assembles to.
  const events = sseChunks(fullStream.raw);
  const text = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.text).join('');
  assert.equal(r('r5').response.type, 'message');
  assert.equal(r('r5').response.id, events[0].message.id);
  assert.equal(r('r5').response.content[0].type, 'text');
  assert.equal(r('r5').response.content[0].text, text);
  assert.equal(r('r5').response.stop_reason, events.find((e) => e.type === 'message_delta').delta.stop_reason);
  assert.equal(r('r5').response.usage.output_tokens, events.find((e) => e.type === 'message_delta').usage.output_tokens);
  assert.equal(r('r6').bodies, 'metadata');
  assert.equal(r('r6').request, undefined);
  assert.equal(r('r7').bodies, 'redacted', 'back to the gateway\'s mode');
});

test('SIGKILL under load, then a restart: every acknowledged request has exactly one record', T, async () => {
  const s = await stack({ LOGGING_BODIES: 'metadata', LOGGING_SINK_FLUSH_INTERVAL: '1h', LOGGING_SINK_FLUSH_SIZE: '50' });
  const acked = new Set();
  let n = 0;
  const worker = async () => {
    while (n < 400) {
      const id = `k${n++}`;
      try {
        const r = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `load ${id}`), { headers: rid(id) });
        if (r.status === 200) acked.add(id);
      } catch {
        return; // the gateway is gone
      }
      if (n === 300) await s.gw.kill();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  assert.ok(acked.size >= 250, `acknowledged ${acked.size}`);
  s.gw.env.LOGGING_SINK_FLUSH_INTERVAL = '1s';
  await s.gw.serve({ threads: 1 });
  let recs = new Map();
  let missing = [];
  await waitUntil(async () => {
    recs = byClientId(await localObjects(s.gw));
    missing = [...acked].filter((id) => !recs.has(id));
    return missing.length === 0;
  }, 20_000, 'a record for every acknowledged request').catch(() => {});
  assert.deepEqual(missing, [], `records of ${acked.size} acknowledged requests missing after the restart`);
  for (const [id, list] of recs) assert.equal(list.length, 1, `one record for ${id}, not ${list.length}`);
  await s.gw.stop();
  assert.equal(s.gw.exit.code, 0);
});

test('S3 (s3rver): records arrive as gzip JSON Lines objects named as specified', T, async () => {
  const s3 = await startS3({ bucket: 'audit', prefix: 'logs/' });
  try {
    const s = await stack({ ...s3.env, LOGGING_BODIES: 'metadata' });
    for (let i = 0; i < 5; i++) {
      assert.equal((await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `s3 ${i}`), { headers: rid(`s${i}`) })).status, 200);
    }
    let names = [];
    const seen = new Map();
    await waitUntil(async () => {
      const ls = await runCliOk(['audit', 'ls', 'logs/'], { env: s.gw.env });
      names = ls.stdout.trim().split('\n').filter(Boolean);
      for (const name of names) {
        if (seen.has(name)) continue;
        const bytes = await s3.get(name);
        const text = zlib.gunzipSync(bytes).toString('utf8');
        seen.set(name, text.trim().split('\n').map((l) => JSON.parse(l)));
      }
      const ids = new Set([...seen.values()].flat().map((r) => r.client_request_id));
      return ['s0', 's1', 's2', 's3', 's4'].every((id) => ids.has(id));
    }, 20_000, 'five records in S3');
    for (const name of names) assert.match(name, new RegExp('^logs/' + NAME_RE.source.slice(1)));
    const all = [...seen.values()].flat();
    for (const id of ['s0', 's1', 's2', 's3', 's4']) {
      assert.equal(all.filter((r) => r.client_request_id === id).length, 1);
    }
    await s.gw.stop();
    assert.equal(s.gw.exit.code, 0);
  } finally {
    await s3.close();
  }
});

/** The value of an unlabelled metric in a scrape (undefined when absent). */
function metric(scrape, name) {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(scrape);
  return m ? Number(m[1]) : undefined;
}

test('S3 stopped mid-run and restarted on its port: nothing lost, nothing twice', T, async (t) => {
  const s3 = await startS3({ bucket: 'audit', prefix: 'logs/' });
  let running = true;
  try {
    const s = await stack({ ...s3.env, LOGGING_BODIES: 'metadata', LOGGING_SINK_FLUSH_INTERVAL: '1s',
      LOGGING_SINK_FLUSH_SIZE: '10' });
    const acked = new Set();
    const failed = [];
    let n = 0;
    const worker = async () => {
      while (running) {
        const id = `o${n++}`;
        try {
          const r = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `outage ${id}`), { headers: rid(id) });
          if (r.status === 200) acked.add(id);
          else failed.push(`${id}: ${r.status} ${r.text}`);
        } catch (e) {
          failed.push(`${id}: ${e.message}`);
          return;
        }
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    const scrape = async () => (await request(s.gw.port, { path: '/metrics' })).text;

    // Objects are being written when the store goes away, with records waiting.
    await waitUntil(() => s3.stats.puts >= 3 && acked.size >= 40, 30_000, 'archiving under load');
    // It goes down right after storing an object, before answering: the gateway must not
    // archive that batch again under another name, nor lose it.
    await within(s3.stop({ afterNextPut: true }), 15_000);
    assert.equal(s3.stats.unanswered, 1, 'the store went down with a PUT stored and unanswered');
    const putsAtStop = s3.stats.puts;
    const ackedAtStop = acked.size;
    const outageEnds = Date.now() + 3_000;
    let lag = 0;
    let ready = null;
    while (Date.now() < outageEnds) {
      lag = Math.max(lag, metric(await scrape(), 'llmgw_audit_archive_lag_seconds') ?? 0);
      ready ??= await request(s.gw.port, { path: '/readyz' });
      await new Promise((r) => setTimeout(r, 250));
    }
    // Requests are served while the store is away; their records wait, and the lag shows it.
    assert.ok(acked.size >= ackedAtStop + 20, `served during the outage: ${acked.size - ackedAtStop}`);
    assert.ok(lag >= 1, `llmgw_audit_archive_lag_seconds during a 3 s outage: ${lag}`);
    assert.ok([200, 503].includes(ready.status), `/readyz during the outage: ${ready.status} ${ready.text}`);
    assert.ok(s.gw.exit === null, 'the gateway is up');

    await s3.restart();
    await new Promise((r) => setTimeout(r, 1_000));
    running = false;
    await Promise.all(workers);
    assert.deepEqual(failed, [], 'every request was answered 200');

    // Everything acknowledged arrives, once.
    const seen = new Map(); // object name → records
    const load = async () => {
      for (const name of await s3.list('logs/')) {
        if (seen.has(name)) continue;
        const text = zlib.gunzipSync(await s3.get(name)).toString('utf8');
        assert.ok(text.endsWith('\n'), `${name}: JSON Lines end with a newline`);
        seen.set(name, text.slice(0, -1).split('\n').map((l) => JSON.parse(l)));
      }
      return [...seen.values()].flat();
    };
    let all = [];
    let missing = [];
    await waitUntil(async () => {
      all = await load();
      const ids = new Set(all.map((r) => r.client_request_id));
      missing = [...acked].filter((id) => !ids.has(id));
      return missing.length === 0;
    }, 90_000, 'the archive to catch up').catch(() => {});
    assert.deepEqual(missing, [], `records of ${acked.size} acknowledged requests missing after the restart`);
    assert.ok(s3.stats.puts > putsAtStop, 'objects were written after the restart');
    assert.ok(s3.stats.existing >= 1, 'the unanswered PUT was sent again and found its object');
    const count = new Map();
    for (const r of all) count.set(r.client_request_id, (count.get(r.client_request_id) ?? 0) + 1);
    const twice = [...count].filter(([, c]) => c !== 1);
    assert.deepEqual(twice, [], 'no record archived twice');
    for (const name of seen.keys()) assert.match(name, new RegExp('^logs/' + NAME_RE.source.slice(1)));
    await waitUntil(async () => metric(await scrape(), 'llmgw_audit_archive_lag_seconds') === 0, 15_000,
      'the archive lag back to 0');
    t.diagnostic(`${acked.size} requests (${acked.size - ackedAtStop} after the stop), ${seen.size} objects, ` +
      `${s3.stats.puts} PUTs stored, ${s3.stats.existing} found their object already there`);
    await s.gw.stop();
    assert.equal(s.gw.exit.code, 0);
    // Nothing was left for a later start either: the final drain added no record twice.
    all = await load();
    const after = new Map();
    for (const r of all) after.set(r.client_request_id, (after.get(r.client_request_id) ?? 0) + 1);
    assert.deepEqual([...after].filter(([, c]) => c !== 1), []);
  } finally {
    running = false;
    await s3.close();
  }
});
