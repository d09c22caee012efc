// Master-key rotation end to end: refused while a gateway serves on the data directory; after
// it, the credential of a provider created through the admin API is sealed under the new key
// (the raw column changes, the old key file is gone) and the provider still serves after a
// restart. A credential the gateway cannot open makes a PATCH without `api_key` a 409 instead
// of silently erasing it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { startAdminStack, adminLogin, adminRequest, chat, chatBody, runCli, ADMIN_EMAIL, ADMIN_PASSWORD } from './harness.mjs';

const T = { timeout: 60_000 };
let s;

before(async () => {
  s = await startAdminStack({ keys: { main: {} } });
});

after(async () => {
  await s?.close();
});

async function ok(p, status = 200) {
  const r = await p;
  assert.equal(r.status, status, r.text);
  return r.json;
}

test('rotate-master-key: refused while serving; afterwards credentials reseal and still serve', T, async () => {
  const prov = await ok(s.req('POST', '/admin/providers',
    { name: 'rot-prov', type: 'openai', base_url: s.mock.baseUrl, api_key: s.mock.apiKey }), 201);
  await ok(s.req('POST', '/admin/models', { name: 'rot-model', provider: 'rot-prov', upstream_model: 'gpt-4o-mini' }), 201);
  assert.equal((await chat(s.gw.port, s.key, chatBody('rot-model', 'before'))).status, 200);

  const keyFile = path.join(s.gw.dataDir, 'master.key');
  const oldKey = fs.readFileSync(keyFile, 'utf8');
  const [before] = await s.gw.sql(`SELECT secrets, secrets_encrypted FROM providers WHERE id = '${prov.id}'`);
  assert.equal(before.secrets_encrypted, 1);
  assert.ok(!before.secrets.includes(s.mock.apiKey), 'sealed at rest');

  const busy = await runCli(['admin', 'rotate-master-key', '--data-dir', s.gw.dataDir], { env: s.gw.env });
  assert.equal(busy.code, 1, busy.stderr);
  assert.match(busy.stderr, /stop every gateway/);
  assert.equal(fs.readFileSync(keyFile, 'utf8'), oldKey, 'nothing changed');

  await s.gw.stop();
  const done = await runCli(['admin', 'rotate-master-key', '--data-dir', s.gw.dataDir], { env: s.gw.env });
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /1 credentials re-encrypted|[0-9]+ credentials re-encrypted/);
  assert.notEqual(fs.readFileSync(keyFile, 'utf8'), oldKey, 'a new key');
  assert.ok(!fs.existsSync(`${keyFile}.new`));
  const [after] = await s.gw.sql(`SELECT secrets FROM providers WHERE id = '${prov.id}'`);
  assert.notEqual(after.secrets, before.secrets, 'resealed');

  await s.gw.serve();
  const token = (await adminLogin(s.gw.port, ADMIN_EMAIL, ADMIN_PASSWORD)).token;
  const r = await chat(s.gw.port, s.key, chatBody('rot-model', 'after'));
  assert.equal(r.status, 200, `the provider's credential opens under the new key: ${r.text}`);

  // The key lost: a gateway generating a new one refuses to start (it would seal what the
  // database's other credentials are not sealed with) until the new key is adopted on purpose.
  // Then the row reads as unreadable, and a PATCH without a new api_key is refused rather than
  // erasing the stored credential.
  await s.gw.stop();
  fs.renameSync(keyFile, `${keyFile}.lost`);
  const refused = await s.gw.serveExpectExit();
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /set LLMGW_MASTER_KEY.*llmgw admin adopt-master-key/s);
  const adopt = await runCli(['admin', 'adopt-master-key', '--data-dir', s.gw.dataDir], { env: s.gw.env });
  assert.equal(adopt.code, 0, adopt.stderr);
  // rot-prov and the configuration file's provider (which the start below seals again)
  assert.match(adopt.stdout, /2 provider credential\(s\) sealed under another key must be given again/);
  await s.gw.serve();
  const gone = await chat(s.gw.port, s.key, chatBody('rot-model', 'no credential'));
  assert.equal(gone.status, 503, `a provider whose credential does not open is unavailable: ${gone.text}`);
  const token2 = (await adminLogin(s.gw.port, ADMIN_EMAIL, ADMIN_PASSWORD)).token;
  const patch = await adminRequest(s.gw.port, token2, 'PATCH', `/admin/providers/${prov.id}`, { enabled: true });
  assert.equal(patch.status, 409, patch.text);
  assert.equal(patch.json.error.param, 'api_key');
  const [still] = await s.gw.sql(`SELECT secrets FROM providers WHERE id = '${prov.id}'`);
  assert.equal(still.secrets, after.secrets, 'the sealed credential is kept');
  const fixed = await adminRequest(s.gw.port, token2, 'PATCH', `/admin/providers/${prov.id}`, { api_key: s.mock.apiKey });
  assert.equal(fixed.status, 200, fixed.text);
  assert.equal((await chat(s.gw.port, s.key, chatBody('rot-model', 'fixed'))).status, 200);
  void token;
});
