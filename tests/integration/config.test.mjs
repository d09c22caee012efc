// The YAML config is a public contract: a bad file makes `serve` exit non-zero with a message
// that names the file, the field and the problem.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';

import { startGateway, standardConfig, toYaml } from './harness.mjs';

const T = { timeout: 30_000 };
const BASE_URL = 'http://127.0.0.1:9/v1'; // never contacted: the config must be refused first
let gw;

before(async () => {
  gw = await startGateway({ config: standardConfig(BASE_URL), serve: false });
});

after(async () => {
  await gw?.cleanup();
});

function mutate(fn) {
  const c = structuredClone(standardConfig(BASE_URL));
  c.providers[0].api_key = { raw: '${MOCK_KEY}' };
  fn(c);
  return toYaml(c);
}

const cases = [
  {
    name: 'unknown field in a model',
    yaml: () => mutate((c) => { c.models[0].colour = 'blue'; }),
    field: 'models[0].colour',
  },
  {
    name: 'model referring to a missing provider',
    yaml: () => mutate((c) => { c.models[1].provider = 'nowhere'; }),
    field: 'models[1].provider',
    words: ['nowhere'],
  },
  {
    name: 'alias referring to a missing model',
    yaml: () => mutate((c) => { c.aliases[0].model = 'ghost-model'; }),
    field: 'aliases[0].model',
    words: ['ghost-model'],
  },
  {
    name: 'timeout of the wrong type',
    yaml: () => mutate((c) => { c.providers[0].first_byte_timeout_ms = 'soon'; }),
    field: 'providers[0].first_byte_timeout_ms',
  },
  {
    name: 'unknown provider type',
    yaml: () => mutate((c) => { c.providers[0].type = 'telepathy'; }),
    field: 'providers[0].type',
    words: ['telepathy'],
  },
  {
    name: 'unknown top-level section',
    yaml: () => mutate((c) => { c.routes = []; }),
    field: 'routes',
  },
  {
    name: 'environment variable not set',
    yaml: () => mutate((c) => { c.providers[0].api_key = { raw: '${LLMGW_TEST_SURELY_UNSET_VAR}' }; }),
    field: 'providers[0].api_key',
    words: ['LLMGW_TEST_SURELY_UNSET_VAR'],
  },
  {
    name: 'duplicate model name',
    yaml: () => mutate((c) => { c.models.push({ name: 'gpt-4o', provider: 'mock' }); }),
    field: 'models[',
    words: ['gpt-4o'],
  },
  {
    name: 'not YAML at all',
    yaml: () => 'providers: [\n  - name: x\n',
    field: '',
  },
];

for (const c of cases) {
  test(`config error: ${c.name}`, T, async () => {
    await fsp.writeFile(gw.configPath, c.yaml());
    const r = await gw.serveExpectExit({ timeoutMs: 10_000 });
    assert.ok(r.exited, `serve kept running with a bad config (${c.name}); stderr:\n${r.stderr}`);
    assert.notEqual(r.code, 0, `serve must exit non-zero; stderr:\n${r.stderr}`);
    assert.equal(r.signal, null, `serve died of signal ${r.signal}; stderr:\n${r.stderr}`);
    assert.ok(r.stderr.includes(gw.configPath), `the message must name the file ${gw.configPath}:\n${r.stderr}`);
    if (c.field) assert.ok(r.stderr.includes(c.field), `the message must name the field ${c.field}:\n${r.stderr}`);
    for (const w of c.words ?? []) assert.ok(r.stderr.includes(w), `the message must mention ${w}:\n${r.stderr}`);
    assert.ok(!r.stderr.includes('terminate called') && !/Segmentation|Aborted|core dumped/.test(r.stderr),
      `a config error must not crash the process:\n${r.stderr}`);
  });
}

test('the corrected config starts', T, async () => {
  await fsp.writeFile(gw.configPath, mutate(() => {}));
  await gw.serve({ threads: 1 });
  const ex = await gw.stop();
  assert.deepEqual(ex, { code: 0, signal: null });
});
