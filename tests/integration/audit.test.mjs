// The audit log: one record per inference request — refusals by auth, routing and limits
// included — archived as gzip JSON Lines objects, in the local directory (the embedded
// default) and in S3 (s3rver behind tests/integration/s3.mjs's checking front). The records
// equal the requests sent; `full` keeps the bodies and `metadata` none; a gateway killed with
// SIGKILL under load loses no record and writes none twice.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import { startStack, startAdminStack, chat, chatBody, stream, authHeaders, request, postJson, sseChunks, runCliOk,
  waitUntil } from './harness.mjs';
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
  const s = await stack({ LOGGING_BODIES: 'full' }, { main: {}, slow: { rpm: 1 } });
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

  let objects = [];
  await waitUntil(async () => {
    objects = await localObjects(s.gw);
    return byClientId(objects).size >= 7;
  }, 15_000, 'seven audit records archived');
  for (const o of objects) assert.match(o.name, NAME_RE);
  const recs = byClientId(objects);
  for (const id of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']) {
    assert.equal(recs.get(id)?.length, 1, `exactly one record for ${id}`);
  }
  const r = (id) => recs.get(id)[0];
  const rows = await s.gw.usageRows();
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
  await waitUntil(async () => {
    recs = byClientId(await localObjects(s.gw));
    return [...acked].every((id) => recs.has(id));
  }, 20_000, 'a record for every acknowledged request');
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
