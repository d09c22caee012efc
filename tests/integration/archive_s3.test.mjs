// The audit archive's sinks from the command line: `llmgw audit check-sink` writes a probe
// object and reads it back, `llmgw audit cat` prints an object's records, `llmgw audit ls`
// lists them; against an S3-compatible store (s3rver behind a front that checks SigV4,
// Content-MD5 and x-amz-content-sha256 as S3 does, tests/integration/s3.mjs) and a local
// directory. The store failing to start fails the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { runCli } from './harness.mjs';
import { startS3, S3_SECRET_ACCESS_KEY } from './s3.mjs';

const T = { timeout: 60_000 };
const SANITIZER_RE = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;
const NAME_RE = /^logs\/_probes\/(\d{4})\/(\d{2})\/(\d{2})\/itest-pod-(\d{8})T(\d{6})Z-(\d{9})\.jsonl\.gz$/;

let s3;
let dataDir;
let env;

before(async () => {
  s3 = await startS3();
  dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmgw-archive-'));
  env = { ...s3.env, POD_NAME: 'itest-pod', LLMGW_DATA_DIR: dataDir };
});

after(async () => {
  await s3?.close();
  if (dataDir) await fsp.rm(dataDir, { recursive: true, force: true });
});

async function audit(args, extraEnv = {}) {
  const r = await runCli(['audit', ...args], { env: { ...env, ...extraEnv } });
  assert.doesNotMatch(r.stderr, SANITIZER_RE, r.stderr);
  return r;
}

const gzipLines = (lines) => zlib.gzipSync(lines.map((l) => `${l}\n`).join(''));

let probeName;

test('check-sink writes a signed, checksummed probe object to S3 and reads it back', T, async () => {
  const before = s3.stats.puts;
  const r = await audit(['check-sink']);
  assert.equal(r.code, 0, r.stderr);
  probeName = r.stdout.trim().split('\n').at(-1);
  const m = NAME_RE.exec(probeName);
  assert.ok(m, `unexpected object name ${probeName}`);
  const [, y, mo, d, stamp] = m;
  assert.equal(stamp, `${y}${mo}${d}`, 'the date directories and the timestamp agree');
  const now = new Date();
  assert.ok(Math.abs(Date.UTC(+y, +mo - 1, +d) - Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())) <= 86_400_000);
  assert.match(r.stderr, /s3:\/\/audit at http:\/\/127\.0\.0\.1:\d+/);
  // The front accepted the PUT: signature, Content-MD5 and payload SHA-256 all matched.
  assert.equal(s3.stats.puts, before + 1);
  assert.deepEqual(s3.stats.refused, []);
  // What s3rver stored is one valid gzip member of JSON Lines.
  const stored = await s3.get(probeName);
  assert.ok(stored, 'the object is in the store');
  const lines = zlib.gunzipSync(stored).toString('utf8').split('\n');
  assert.equal(lines.at(-1), '', 'ends with a newline');
  assert.equal(lines.length, 2);
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.probe, true);
  assert.equal(rec.pod, 'itest-pod');
});

test('audit cat prints the records of an S3 object by s3:// URL and by name', T, async () => {
  assert.ok(probeName, 'the check-sink test ran first');
  for (const what of [`s3://audit/${probeName}`, probeName]) {
    const r = await audit(['cat', what]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]).pod, 'itest-pod');
  }
  const ls = await audit(['ls', 'logs/_probes/']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.ok(ls.stdout.split('\n').includes(probeName), ls.stdout);
});

test('audit cat reads concatenated gzip members and refuses corrupt objects', T, async () => {
  const records = [{ request_id: 'r1', status: 200 }, { request_id: 'r2', status: 429, body: 'é "x"' }];
  const key = 'logs/2026/12/07/other-pod-20261207T180102Z-000000001.jsonl.gz';
  await s3.put(key, Buffer.concat([gzipLines([JSON.stringify(records[0])]), gzipLines([JSON.stringify(records[1])])]));
  let r = await audit(['cat', `s3://audit/${key}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').map((l) => JSON.parse(l)), records);

  const good = gzipLines(['{"a":1}', '{"b":2}']);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 6] ^= 0xff; // inside the CRC-32
  for (const [name, bytes] of [['truncated', good.subarray(0, good.length - 4)], ['flipped', flipped],
    ['plain', Buffer.from('{"not":"gzip"}\n')]]) {
    const k = `logs/broken/${name}.jsonl.gz`;
    await s3.put(k, bytes);
    r = await audit(['cat', `s3://audit/${k}`]);
    assert.equal(r.code, 1, `${name}: ${r.stdout}`);
    assert.match(r.stderr, /corrupt|truncated/, name);
  }
  r = await audit(['cat', 's3://audit/logs/missing.jsonl.gz']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 404: NoSuchKey/);
});

test('the store refuses a body whose Content-MD5 does not match, so accepted uploads carried a right one', T, async () => {
  const body = Buffer.from('payload');
  const md5 = (b) => crypto.createHash('md5').update(b).digest('base64');
  const key = '/audit/logs/md5-check.jsonl.gz';
  let r = await s3.raw('PUT', key, { 'content-md5': md5('other') }, body, { sign: true });
  assert.equal(r.status, 400, r.body.toString());
  assert.match(r.body.toString(), /<Code>BadDigest<\/Code>/);
  assert.equal(s3.stats.refused.pop(), 'BadDigest');
  r = await s3.raw('PUT', key, { 'content-md5': md5(body) }, body, { sign: true });
  assert.equal(r.status, 200, r.body.toString());
  // A signed payload hash that is not the body's.
  r = await s3.raw('PUT', key, { 'content-md5': md5(body), 'x-amz-content-sha256': '0'.repeat(64) }, body, { sign: true });
  assert.equal(r.status, 403);
  assert.equal(s3.stats.refused.pop(), 'XAmzContentSHA256Mismatch');
  // Unsigned: refused before anything else.
  r = await s3.raw('PUT', key, { 'content-md5': md5(body) }, body);
  assert.equal(r.status, 403);
  assert.equal(s3.stats.refused.pop(), 'AccessDenied');
});

test('a wrong secret is refused with the store\'s reason, and the secret is never printed', T, async () => {
  const secret = 'wrong-secret-key-0123456789abcdefABCDEF';
  const r = await audit(['check-sink'], { AWS_SECRET_ACCESS_KEY: secret });
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /HTTP 403: SignatureDoesNotMatch/);
  assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));
  assert.ok(!r.stderr.includes(S3_SECRET_ACCESS_KEY + '/'));
  assert.equal(s3.stats.refused.pop(), 'SignatureDoesNotMatch');
});

test('an unreachable store fails check-sink with a reason, no crash', T, async () => {
  const r = await audit(['check-sink'], { LOGGING_SINK_S3_ENDPOINT: 'http://127.0.0.1:9' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /connecting to 127\.0\.0\.1:9 failed/);
});

test('the local directory sink: check-sink, ls and cat of a name or a file path', T, async () => {
  const dir = path.join(dataDir, 'local-audit');
  const localEnv = { LOGGING_SINK_S3_BUCKET: '', LOGGING_SINK_DIR: dir };
  const r = await audit(['check-sink'], localEnv);
  assert.equal(r.code, 0, r.stderr);
  const name = r.stdout.trim();
  assert.match(name, /^_probes\/\d{4}\/\d{2}\/\d{2}\/itest-pod-\d{8}T\d{6}Z-\d{9}\.jsonl\.gz$/);
  const file = path.join(dir, name);
  assert.ok(fs.existsSync(file));
  assert.deepEqual(fs.readdirSync(path.dirname(file)), [path.basename(file)], 'no temporary file left');
  for (const what of [name, file, `file://${file}`]) {
    const c = await audit(['cat', what], localEnv);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout.trim()).probe, true);
  }
  const ls = await audit(['ls'], localEnv);
  assert.equal(ls.stdout.trim(), name);
  // The default directory is DATA_DIR/audit.
  const d = await audit(['check-sink'], { LOGGING_SINK_S3_BUCKET: '' });
  assert.equal(d.code, 0, d.stderr);
  assert.ok(fs.existsSync(path.join(dataDir, 'audit', d.stdout.trim())));
});
