// Test harness: starts the mock upstream and the real `llmgw` binary in a temporary data
// directory, creates keys through the CLI, talks HTTP (high level and raw sockets), reads the
// store (the sqlite3 or psql command-line tool) and stops everything. For the admin API: a
// stack with a bootstrapped admin signed in, JWT forging with the test secret, and exact
// decimal helpers for money.
//
// Binary: env LLMGW_BIN (absolute, or relative to the current directory or the repo root),
// default build/release/llmgw under the repo root. A missing binary or a server that cannot
// start fails the test with a message; nothing here ever skips.
//
// Store: env LLMGW_TEST_STORE. `sqlite` (the default): each gateway's database is DIR/llmgw.db.
// `postgres`: each gateway gets a fresh schema in the server of LLMGW_TEST_DATABASE_URL
// (scripts/test.sh starts one) through DATABASE_URL, for `serve` and the CLI alike, dropped at
// cleanup; a test that sets DATABASE_URL itself keeps its own. Gateway.sql() answers the same
// rows on both (see psqlJson), so the suites run unchanged on either.

import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { OpenAIMock, DEFAULT_API_KEY } from '../mock/openai_mock.mjs';

export { OpenAIMock, DEFAULT_API_KEY };
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const KEY_RE = /^sk-llmgw-[A-Za-z0-9_-]{43}$/;
export const KEY_ID_RE = /\bkey_[0-9a-f]{16}\b/;

const SANITIZER_RE = /AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|runtime error:/;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;
const CLI_TIMEOUT_MS = 15_000;
const POLL_MS = 25;

/** The store every gateway of the run uses unless a test picks one: 'sqlite' or 'postgres'. */
export const TEST_STORE = process.env.LLMGW_TEST_STORE || 'sqlite';
if (TEST_STORE !== 'sqlite' && TEST_STORE !== 'postgres') {
  throw new Error(`LLMGW_TEST_STORE must be sqlite or postgres, not ${JSON.stringify(TEST_STORE)}`);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with `promise`'s value, or with `onTimeout` after `ms` (the timer is cleared). */
export function within(promise, ms, onTimeout = undefined) {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(onTimeout), ms); });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Polls `fn` until it returns a truthy value; throws `what` after `timeoutMs`. */
export async function waitUntil(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
        (last instanceof Error ? ` (last error: ${last.message})` : ''));
    }
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Absolute path of the gateway binary; throws a clear error when it does not exist. */
export function gatewayBinary() {
  const env = process.env.LLMGW_BIN;
  const candidates = env
    ? (path.isAbsolute(env) ? [env] : [path.resolve(process.cwd(), env), path.resolve(REPO_ROOT, env)])
    : [path.join(REPO_ROOT, 'build/release/llmgw')];
  for (const c of candidates) {
    if (fs.existsSync(c)) return c;
  }
  throw new Error(`llmgw binary not found (looked at ${candidates.join(', ')}). Build it ` +
    '(cmake --preset release && cmake --build --preset release) or point LLMGW_BIN at it.');
}

/**
 * Runs `llmgw ARGS...` to completion (bounded) and returns {code, signal, stdout, stderr}.
 * `input` (string or Buffer), when given, is written to the command's stdin, which is then
 * closed.
 */
export function runCli(args, { env = {}, timeoutMs = CLI_TIMEOUT_MS, input } = {}) {
  const bin = gatewayBinary();
  return new Promise((resolve) => {
    const child = execFile(bin, args, { env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL',
      maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
        signal: err?.signal ?? null,
        timedOut: Boolean(err?.killed),
        stdout: String(stdout),
        stderr: String(stderr) + (err && typeof err.code !== 'number' && !err.signal ? `\n[harness] ${err.message}` : ''),
      });
    });
    if (input !== undefined) {
      child.stdin.on('error', () => {}); // the command may exit without reading it
      child.stdin.end(input);
    }
  });
}

/** Like runCli but throws (with the output) unless the command exits 0. */
export async function runCliOk(args, opts) {
  const r = await runCli(args, opts);
  if (r.code !== 0) {
    throw new Error(`llmgw ${args.join(' ')} failed (code ${r.code}, signal ${r.signal}` +
      `${r.timedOut ? ', timed out' : ''}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Configuration

function yamlScalar(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(String(v));
}

/** Renders {providers, models, aliases, ...} (lists of flat maps) as YAML. */
export function toYaml(config) {
  const out = [];
  for (const [section, items] of Object.entries(config)) {
    if (!Array.isArray(items)) {
      out.push(`${section}: ${yamlScalar(items)}`);
      continue;
    }
    if (items.length === 0) {
      out.push(`${section}: []`);
      continue;
    }
    out.push(`${section}:`);
    for (const item of items) {
      let first = true;
      for (const [k, v] of Object.entries(item)) {
        const raw = typeof v === 'object' && v !== null && v.raw !== undefined ? v.raw : yamlScalar(v);
        out.push(`${first ? '  - ' : '    '}${k}: ${raw}`);
        first = false;
      }
    }
  }
  return out.join('\n') + '\n';
}

/**
 * The standard configuration of the tests: provider `mock` (the mock upstream, key from env
 * MOCK_KEY) and `local` (echo); models gpt-4o-mini → gpt-4o-mini-2024-07-18, gpt-4o,
 * text-embedding-3-small on the mock; echo-chat and echo-embed on echo; aliases fast → gpt-4o-mini and
 * quick-echo → echo-chat.
 */
export function standardConfig(mockBaseUrl, providerExtra = {}) {
  return {
    providers: [
      { name: 'mock', type: 'openai', base_url: mockBaseUrl, api_key: { raw: '${MOCK_KEY}' }, ...providerExtra },
      { name: 'local', type: 'echo' },
    ],
    models: [
      { name: 'gpt-4o-mini', provider: 'mock', upstream_model: 'gpt-4o-mini-2024-07-18' },
      { name: 'gpt-4o', provider: 'mock' },
      { name: 'text-embedding-3-small', provider: 'mock' },
      { name: 'echo-chat', provider: 'local' },
      { name: 'echo-embed', provider: 'local' },
    ],
    aliases: [
      { alias: 'fast', model: 'gpt-4o-mini' },
      { alias: 'quick-echo', model: 'echo-chat' },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The gateway

export class Gateway {
  /**
   * `env` is added to the environment of `serve` and of every CLI command; DATABASE_URL in it
   * selects PostgreSQL. `schema` (a pgSchema()) is this gateway's own, dropped by cleanup().
   * Tests get gateways from startGateway(), which picks the store of LLMGW_TEST_STORE.
   */
  constructor({ dataDir, configPath, env, schema = null }) {
    this.dataDir = dataDir;
    this.configPath = configPath;
    this.env = env;
    this.schema = schema;
    this.keys = {};
    this.stderr = '';
    this.allStderr = ''; // every run of this gateway, for the sanitizer check
    this.stdout = '';
    this.child = null;
    this.port = null;
    this.exit = null; // {code, signal} once exited
    this.exitPromise = null;
  }

  get pid() {
    return this.child?.pid;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get baseUrl() {
    return `${this.url}/v1`;
  }

  /** The SQLite database file (meaningful when `store` is 'sqlite'). */
  get dbPath() {
    return path.join(this.dataDir, 'llmgw.db');
  }

  /** The PostgreSQL URL the gateway runs on, or null for SQLite. */
  get databaseUrl() {
    const url = this.env.DATABASE_URL;
    return url && /^postgres(ql)?:/.test(url) ? url : null;
  }

  /** 'postgres' or 'sqlite': the store this gateway runs on. */
  get store() {
    return this.databaseUrl ? 'postgres' : 'sqlite';
  }

  /** `llmgw keys create` for this data dir; returns {key, id, stdout}. */
  async createKey(name, { models, expires, rpm, tpm, budget, budgetPeriod } = {}) {
    const args = ['keys', 'create', '--data-dir', this.dataDir, '--name', name];
    if (models) args.push('--models', models.join(','));
    if (expires) args.push('--expires', expires);
    if (rpm !== undefined) args.push('--rpm', String(rpm));
    if (tpm !== undefined) args.push('--tpm', String(tpm));
    if (budget !== undefined) args.push('--budget', String(budget));
    if (budgetPeriod !== undefined) args.push('--budget-period', budgetPeriod);
    const r = await runCliOk(args, { env: this.env });
    const lines = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    const key = lines[lines.length - 1] ?? '';
    if (!KEY_RE.test(key)) {
      throw new Error(`keys create: the last stdout line is not a key (sk-llmgw- + 43 base64url): ${JSON.stringify(r.stdout)}`);
    }
    const idMatch = /\bid:\s*(key_[0-9a-f]{16})\b/.exec(r.stdout);
    if (!idMatch) throw new Error(`keys create: no "id: key_<16 hex>" line in ${JSON.stringify(r.stdout)}`);
    const out = { key, id: idMatch[1], stdout: r.stdout };
    this.keys[name] = out;
    return out;
  }

  /**
   * `llmgw admin create-user` for this data dir, the password on stdin (with a trailing newline,
   * as `echo "$PASSWORD" |` sends it). Returns {code, stdout, stderr, id} (id: the usr_… id
   * printed, if any); throws unless `expectOk` is false.
   */
  async createAdminUser(email, password, { role = 'admin', expectOk = true, input } = {}) {
    const args = ['admin', 'create-user', '--data-dir', this.dataDir, '--email', email, '--role', role];
    const r = expectOk
      ? await runCliOk(args, { env: this.env, input: input ?? `${password}\n` })
      : await runCli(args, { env: this.env, input: input ?? `${password}\n` });
    const m = /\busr_[0-9a-f]{16}\b/.exec(r.stdout);
    return { ...r, id: m ? m[0] : null };
  }

  async disableKey(id) {
    return runCliOk(['keys', 'disable', '--data-dir', this.dataDir, id], { env: this.env });
  }

  async listKeys() {
    const r = await runCliOk(['keys', 'list', '--data-dir', this.dataDir, '--json'], { env: this.env });
    try {
      return JSON.parse(r.stdout);
    } catch (e) {
      throw new Error(`keys list --json printed no JSON: ${e.message}: ${r.stdout}`);
    }
  }

  /** Spawns `serve` on a free port and waits until GET /readyz answers 200. */
  async serve({ threads = 2, extraArgs = [], readyTimeoutMs = READY_TIMEOUT_MS } = {}) {
    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await freePort();
      this.#spawn(['serve', '--config', this.configPath, '--data-dir', this.dataDir,
        '--host', '127.0.0.1', '--port', String(this.port), '--threads', String(threads), ...extraArgs]);
      try {
        await this.#waitReady(readyTimeoutMs);
        return this;
      } catch (e) {
        lastError = e;
        if (this.exit && /address (already )?in use|EADDRINUSE/i.test(this.stderr)) continue;
        await this.kill();
        throw e;
      }
    }
    throw lastError;
  }

  /**
   * Spawns `serve` expecting it to refuse to start. Resolves with {code, signal, stderr,
   * exited}; a process still running after `timeoutMs` is killed and reported exited: false.
   */
  async serveExpectExit({ timeoutMs = 10_000, extraArgs = [] } = {}) {
    this.port = await freePort();
    this.#spawn(['serve', '--config', this.configPath, '--data-dir', this.dataDir,
      '--host', '127.0.0.1', '--port', String(this.port), '--threads', '1', ...extraArgs]);
    const r = await within(this.exitPromise, timeoutMs, null);
    if (!r) {
      await this.kill();
      return { exited: false, code: null, signal: null, stderr: this.stderr };
    }
    return { exited: true, ...r, stderr: this.stderr };
  }

  #spawn(args) {
    this.stderr = '';
    this.stdout = '';
    this.exit = null;
    const child = spawn(gatewayBinary(), args, { env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { this.stdout += d; });
    child.stderr.on('data', (d) => {
      this.stderr += d;
      this.allStderr += d;
    });
    this.exitPromise = new Promise((resolve) => {
      child.on('error', (err) => {
        this.stderr += `\n[harness] spawn error: ${err.message}\n`;
      });
      child.on('close', (code, signal) => {
        live.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  async #waitReady(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exit) {
        throw new Error(`llmgw serve exited during start-up (code ${this.exit.code}, signal ` +
          `${this.exit.signal}). stderr:\n${this.stderr}`);
      }
      try {
        const r = await request(this.port, { path: '/readyz', timeoutMs: 1_000 });
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`llmgw serve did not answer 200 on /readyz within ${timeoutMs} ms. stderr:\n${this.stderr}`);
  }

  /**
   * Sends `signal` (null: none, the process was already signalled) and waits (bounded) for the
   * exit; returns {code, signal}.
   */
  async stop({ signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS } = {}) {
    if (!this.child) return this.exit;
    if (!this.exit && signal) this.child.kill(signal);
    const r = await within(this.exitPromise, timeoutMs, 'timeout');
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exitPromise;
      throw new Error(`llmgw did not exit within ${timeoutMs} ms of ${signal ?? 'the signal'}; killed. stderr tail:\n` +
        this.stderr.slice(-4000));
    }
    return this.exit;
  }

  /** SIGKILL without questions (clean-up after a failure). */
  async kill() {
    if (this.child && !this.exit) {
      this.child.kill('SIGKILL');
      await within(this.exitPromise, 5_000);
    }
  }

  /** Every stderr line that parses as a JSON object. */
  logLines() {
    const out = [];
    for (const line of this.stderr.split('\n')) {
      const t = line.trim();
      if (!t.startsWith('{')) continue;
      try {
        out.push(JSON.parse(t));
      } catch {
        // a partial last line or a non-JSON line: ignored here, see nonJsonStderrLines()
      }
    }
    return out;
  }

  nonJsonStderrLines() {
    return this.stderr.split('\n').filter((l) => {
      const t = l.trim();
      if (!t) return false;
      try {
        return typeof JSON.parse(t) !== 'object';
      } catch {
        return true;
      }
    });
  }

  /** Access-log lines (those with request_id and status). */
  accessLog() {
    return this.logLines().filter((l) => l.request_id !== undefined && l.status !== undefined);
  }

  /**
   * The access-log line of the request the client tagged `x-request-id: rid` (the gateway logs
   * that as client_request_id beside its own request_id; a line whose request_id is rid counts
   * too).
   */
  async waitForAccessLog(rid, timeoutMs = 3_000) {
    return waitUntil(() => this.accessLog().find((l) => l.client_request_id === rid || l.request_id === rid),
      timeoutMs, `an access-log line for x-request-id ${rid}`);
  }

  fdCount() {
    return fs.readdirSync(`/proc/${this.pid}/fd`).length;
  }

  /**
   * Rows of `query` (SQL both stores understand) against this gateway's store, as an array of
   * objects in the shape `sqlite3 -json` gives on either store (see psqlJson).
   */
  sql(query) {
    const url = this.databaseUrl;
    return url ? psqlJson(url, query) : sqliteJson(this.dbPath, query);
  }

  /** The names of the store's tables, sorted. */
  async tableNames() {
    const rows = this.databaseUrl
      ? await this.sql("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
      : await this.sql("SELECT name FROM sqlite_master WHERE type = 'table'");
    return rows.map((r) => r.name).sort();
  }

  /**
   * All usage_records rows, each with `rid`: the x-request-id the client sent
   * (client_request_id) or, for a request without one, the gateway's request_id. Rows of the
   * same microsecond come in insertion (id) order on both stores.
   */
  async usageRows() {
    const rows = await this.sql('SELECT * FROM usage_records ORDER BY created_at_us, id');
    return rows.map((r) => ({ ...r, rid: r.client_request_id || r.request_id }));
  }

  /** The usage rows of the request the client tagged `x-request-id: rid`. */
  async usageFor(rid) {
    return (await this.usageRows()).filter((r) => r.rid === rid || r.request_id === rid);
  }

  /**
   * Kills what is left, removes the data dir and drops the gateway's own schema, and fails if
   * a sanitizer (dev/tsan builds) reported anything on stderr during any run of this gateway.
   */
  async cleanup() {
    await this.kill();
    // On PostgreSQL no command may have fallen back to a SQLite database in the data dir.
    const strayDb = this.databaseUrl !== null && fs.existsSync(this.dbPath);
    if (!process.env.LLMGW_KEEP_TMP) {
      await fsp.rm(this.dataDir, { recursive: true, force: true });
      const schema = this.schema;
      this.schema = null;
      await schema?.drop();
    }
    if (strayDb) throw new Error(`a SQLite database appeared in ${this.dataDir} although DATABASE_URL is set`);
    const m = SANITIZER_RE.exec(this.allStderr);
    if (m) {
      throw new Error(`sanitizer report on llmgw's stderr:\n${this.allStderr.slice(Math.max(0, m.index - 200), m.index + 4000)}`);
    }
  }
}

/**
 * Creates a temp data dir, writes the config (YAML text or an object for toYaml), runs
 * `migrate`, creates `keys` ({name: options}) and, unless `serve: false`, starts `serve`.
 * With LLMGW_TEST_STORE=postgres and no DATABASE_URL in `env`, the gateway gets a fresh schema.
 */
export async function startGateway({ config, env = {}, keys = {}, serve = true, threads = 2,
  extraArgs = [], mockKey = DEFAULT_API_KEY } = {}) {
  gatewayBinary(); // fail fast with a clear message
  const schema = TEST_STORE === 'postgres' && env.DATABASE_URL === undefined ? await pgSchema() : null;
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmgw-it-'));
  const configPath = path.join(dataDir, 'config.yaml');
  await fsp.writeFile(configPath, typeof config === 'string' ? config : toYaml(config));
  const gw = new Gateway({ dataDir, configPath, schema,
    env: { MOCK_KEY: mockKey, ...(schema ? { DATABASE_URL: schema.url } : {}), ...env } });
  try {
    await runCliOk(['migrate', '--data-dir', dataDir], { env: gw.env });
    for (const [name, opts] of Object.entries(keys)) await gw.createKey(name, opts);
    if (serve) await gw.serve({ threads, extraArgs });
  } catch (e) {
    await gw.cleanup();
    throw e;
  }
  return gw;
}

/**
 * Starts a mock upstream and a gateway with standardConfig() (or `config`: an object, or a
 * function of the mock's base URL); keys default to {main: {}}.
 */
export async function startStack({ mockOptions = {}, providerExtra = {}, env = {},
  keys = { main: {} }, threads = 2, config } = {}) {
  const mock = new OpenAIMock(mockOptions);
  await mock.start();
  let gw;
  try {
    const cfg = typeof config === 'function' ? config(mock.baseUrl) : config;
    gw = await startGateway({ config: cfg ?? standardConfig(mock.baseUrl, providerExtra), env, keys,
      threads, mockKey: mock.apiKey });
  } catch (e) {
    await mock.stop();
    throw e;
  }
  return {
    mock,
    gw,
    key: gw.keys.main?.key,
    async close() {
      try {
        await gw.cleanup();
      } finally {
        await mock.stop();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sqlite3 and psql

export function sqliteJson(dbPath, query) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-json', '-readonly', dbPath, query], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(err.code === 'ENOENT'
          ? 'the sqlite3 command-line tool is not installed (apt-get install -y sqlite3)'
          : `sqlite3 failed: ${err.message}\n${stderr}`));
        return;
      }
      const text = String(stdout).trim();
      resolve(text ? JSON.parse(text) : []);
    });
  });
}

/**
 * Runs `sql` (statements, or a psql script with backslash commands) with psql on `url`;
 * resolves with its unaligned, tuples-only output, trimmed.
 */
export function psql(url, sql) {
  return new Promise((resolve, reject) => {
    const child = execFile('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-'],
      { timeout: 15_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(err.code === 'ENOENT'
            ? 'the psql command-line tool is not installed (apt-get install -y postgresql-client)'
            : `psql failed: ${err.message}\n${stderr}`));
        } else {
          resolve(String(stdout).trim());
        }
      });
    child.stdin.on('error', () => {}); // a failed start is reported by the callback
    child.stdin.end(sql);
  });
}

// The row values as the SQLite schema stores them, so that one assertion holds on both stores:
// BOOLEAN → 0/1 (SQLite's flags are INTEGER); NUMERIC (money: spend_daily.cost_usd, TEXT in
// SQLite) → its decimal text without trailing zeros, never a lossy JSON number; JSON → its
// text as written (SQLite keeps JSON in TEXT). JSONB comes back parsed and psqlJson writes it
// as compact JSON text. Integers stay JSON numbers, as with `sqlite3 -json`. Note that
// PostgreSQL's SUM of integers is NUMERIC: cast it (CAST(SUM(x) AS INTEGER)) to compare it
// as a number.
const PG_AS_SQLITE = `
SELECT 'SELECT coalesce(json_agg(r), ''[]'') FROM (SELECT ' || string_agg(
    CASE format_type(atttypid, NULL)
      WHEN 'boolean' THEN format('%1$I::int AS %1$I', attname)
      WHEN 'numeric' THEN format('trim_scale(%1$I)::text AS %1$I', attname)
      WHEN 'json' THEN format('%1$I::text AS %1$I', attname)
      ELSE format('%I', attname)
    END, ', ' ORDER BY attnum) || ' FROM pg_temp.llmgw_harness_rows) r'
  FROM pg_attribute
  WHERE attrelid = 'pg_temp.llmgw_harness_rows'::regclass AND attnum > 0 AND NOT attisdropped
\\gexec
`;

/**
 * Rows of `query` on the PostgreSQL of `url` as an array of objects, in the shape sqliteJson
 * gives for the same rows on SQLite (see PG_AS_SQLITE). One psql session: the query becomes a
 * temporary view whose column types pick each column's conversion.
 */
export async function psqlJson(url, query) {
  const q = query.trim().replace(/;$/, '');
  const text = await psql(url, `CREATE TEMP VIEW llmgw_harness_rows AS ${q};\n${PG_AS_SQLITE}`);
  const rows = JSON.parse(text);
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) {
      if (typeof v === 'object' && v !== null) row[k] = JSON.stringify(v);
    }
  }
  return rows;
}

/**
 * A fresh schema in the test PostgreSQL server: {url (search_path set to it), name,
 * query(sql), drop()}. Fails when LLMGW_TEST_DATABASE_URL is not set (scripts/test.sh sets
 * it).
 */
export async function pgSchema() {
  const base = process.env.LLMGW_TEST_DATABASE_URL;
  if (!base) {
    throw new Error('LLMGW_TEST_DATABASE_URL is not set: run scripts/test.sh, or eval "$(scripts/pg.sh start)" first');
  }
  const name = `it_${crypto.randomBytes(6).toString('hex')}`;
  await psql(base, `CREATE SCHEMA ${name}`);
  const url = `${base}${base.includes('?') ? '&' : '?'}options=-csearch_path%3D${name}`;
  return {
    url,
    name,
    query: (sql) => psql(url, sql),
    drop: () => psql(base, `DROP SCHEMA ${name} CASCADE`),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP

/**
 * One HTTP/1.1 exchange on a fresh connection. Resolves with {status, headers, rawHeaders,
 * body (Buffer), text, json} (json: parsed body or undefined). Bounded by timeoutMs.
 * `localAddress` (e.g. '127.0.0.7') picks the client address the gateway sees.
 */
export function request(port, { method = 'GET', path: p = '/', headers = {}, body, timeoutMs = 10_000,
  localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined
      : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (payload !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/json';
    if (payload !== undefined) h['content-length'] = String(payload.length);
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h, agent: false,
      ...(localAddress ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${method} ${p}: no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: buf, text, json });
      });
    });
    req.end(payload);
  });
}

export function authHeaders(key, extra = {}) {
  return { authorization: `Bearer ${key}`, ...extra };
}

/** POST /v1/chat/completions (or `path`) with a JSON body. */
export function postJson(port, key, p, body, { headers = {}, timeoutMs } = {}) {
  const h = key === undefined ? { ...headers } : authHeaders(key, headers);
  return request(port, { method: 'POST', path: p, headers: h, body, timeoutMs });
}

export function chat(port, key, body, opts) {
  return postJson(port, key, '/v1/chat/completions', body, opts);
}

/** A minimal chat body; `text` goes into the one user message. */
export function chatBody(model, text, extra = {}) {
  return { model, messages: [{ role: 'user', content: text }], ...extra };
}

/**
 * A streaming exchange. Resolves with {status, headers, raw (string), complete (the response
 * ended cleanly), error}. `onData(chunkText, all, req)` may destroy the request (client
 * disconnect). Never rejects on a mid-body connection loss: that is reported in `complete`.
 */
export function stream(port, { method = 'POST', path: p = '/v1/chat/completions', headers = {}, body,
  timeoutMs = 15_000, onData } = {}) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers } });
    let settled = false;
    let result = null;
    const finish = (extra) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, ...extra });
    };
    const timer = setTimeout(() => {
      if (result) {
        finish({ complete: false, error: `timed out after ${timeoutMs} ms`, timedOut: true });
        req.destroy();
      } else {
        settled = true;
        req.destroy();
        reject(new Error(`${method} ${p}: no response headers within ${timeoutMs} ms`));
      }
    }, timeoutMs);
    req.on('error', (e) => {
      if (result) finish({ complete: false, error: e.message });
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(e);
      }
    });
    req.on('response', (res) => {
      result = { status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, raw: '',
        complete: false, error: null, firstByteAt: null };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        result.firstByteAt ??= Date.now();
        result.raw += d;
        onData?.(d, result.raw, req);
      });
      res.on('end', () => finish({ complete: true }));
      res.on('error', (e) => finish({ complete: false, error: e.message }));
      res.on('close', () => finish({ complete: res.complete }));
    });
    req.end(payload);
  });
}

/**
 * Runs a mock as a program (`node FILE --port 0 ARGS…`) and resolves with {child, line} once it
 * printed its JSON `listening` line; `stop()` sends SIGTERM and waits for the exit.
 */
export async function spawnMockProgram(file, args = []) {
  const child = spawn(process.execPath, [file, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async () => {
    child.kill('SIGTERM');
    await within(new Promise((r) => child.on('close', r)), 3_000);
  };
  try {
    const line = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 5_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(JSON.parse(out.split('\n')[0]));
        }
      });
    });
    return { child, line, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Splits an SSE text into the `data:` payloads of its events. */
export function sseData(raw) {
  return raw.split('\n\n').filter((e) => e.length > 0).map((e) => {
    const lines = e.split('\n').filter((l) => l.startsWith('data:'));
    return lines.map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
  }).filter((x) => x.length > 0);
}

/** The parsed JSON chunks of an SSE text (without [DONE]). */
export function sseChunks(raw) {
  return sseData(raw).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
}

// ---------------------------------------------------------------------------------------------
// Raw sockets

export function connect(port, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${port}: timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * Writes `bytes` on a fresh connection and collects what comes back until the server closes
 * the connection, `until(buffer)` is true, or `timeoutMs` passes. Write errors (the server
 * closing early) are recorded, not thrown. Resolves with {data, closedByServer, timedOut,
 * writeError}.
 */
export async function rawExchange(port, bytes, { timeoutMs = 10_000, until } = {}) {
  const s = await connect(port);
  return new Promise((resolve) => {
    const chunks = [];
    let writeError = null;
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(chunks), writeError, ...extra });
    };
    const timer = setTimeout(() => finish({ closedByServer: false, timedOut: true }), timeoutMs);
    s.on('data', (d) => {
      chunks.push(d);
      if (until?.(Buffer.concat(chunks))) finish({ closedByServer: false, timedOut: false });
    });
    s.on('end', () => finish({ closedByServer: true, timedOut: false }));
    s.on('close', () => finish({ closedByServer: true, timedOut: false }));
    s.on('error', (e) => {
      writeError = e.code ?? e.message;
    });
    const list = Array.isArray(bytes) ? bytes : [bytes];
    (async () => {
      for (const b of list) {
        if (done || s.destroyed) break;
        const ok = s.write(b);
        if (!ok) await Promise.race([new Promise((r) => s.once('drain', r)), new Promise((r) => s.once('close', r))]);
      }
    })();
  });
}

/**
 * Parses consecutive HTTP/1.1 responses from `buf` (Content-Length or chunked bodies).
 * Returns {responses: [{status, headers (lower-case), body (Buffer)}], rest (Buffer)}.
 */
export function parseHttpResponses(buf, { headRequests = 0 } = {}) {
  const responses = [];
  let off = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', off);
    if (headEnd < 0) break;
    const head = buf.subarray(off, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
    if (!m) throw new Error(`not an HTTP response at offset ${off}: ${JSON.stringify(head[0])}`);
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) {
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      }
    }
    let p = headEnd + 4;
    let body;
    const status = Number(m[1]);
    if (responses.length < headRequests || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts = [];
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size');
        if (size === 0) {
          const te = buf.indexOf('\r\n\r\n', le);
          if (te < 0) break;
          p = te + 4;
          complete = true;
          break;
        }
        if (le + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (p + n > buf.length) break;
      body = buf.subarray(p, p + n);
      p += n;
    } else {
      body = buf.subarray(p); // read until close
      p = buf.length;
    }
    responses.push({ status, headers, body, text: body.toString('utf8') });
    off = p;
  }
  return { responses, rest: buf.subarray(off) };
}

/** Serialises one HTTP/1.1 request (Content-Length set from the body). */
export function rawRequest({ method = 'POST', path: p = '/v1/chat/completions', headers = {}, body }) {
  const payload = body === undefined ? Buffer.alloc(0)
    : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const h = { host: '127.0.0.1', ...headers };
  if (body !== undefined) {
    h['content-type'] ??= 'application/json';
    h['content-length'] = String(payload.length);
  }
  const head = `${method} ${p} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

/** Asserts-friendly summary of an OpenAI error body. */
export function errorOf(res) {
  return res.json?.error;
}

/** Checks the OpenAI error shape: {"error":{"message","type","param","code"}}; returns error. */
export function assertOpenAIError(assert, res, status, type, code) {
  assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json.error === 'object', `not an OpenAI error body: ${res.text}`);
  const e = res.json.error;
  assert.equal(typeof e.message, 'string', `error.message must be a string: ${res.text}`);
  assert.ok(e.message.length > 0, 'error.message must not be empty');
  assert.ok('param' in e && 'code' in e && 'type' in e, `error must have message, type, param, code: ${res.text}`);
  if (type !== undefined) assert.equal(e.type, type, `error.type: ${res.text}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code: ${res.text}`);
  assert.match(String(res.headers['content-type']), /application\/json/, 'error content-type');
  return e;
}

/** The one x-request-id header of a response (asserts there is exactly one). */
export function requestIdOf(assert, res) {
  const values = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i].toLowerCase() === 'x-request-id') values.push(res.rawHeaders[i + 1]);
  }
  assert.equal(values.length, 1, `expected exactly one x-request-id header, got ${JSON.stringify(values)}`);
  return values[0];
}

// ---------------------------------------------------------------------------------------------
// Admin API

/**
 * The ADMIN_JWT_SECRET of the admin suites, so they can forge and check tokens with
 * node:crypto. 48 bytes, and neither base64 nor hex (the '!' and ':'), so it can only be
 * taken as the raw bytes of the string.
 */
export const TEST_JWT_SECRET = 'llmgw-integration-tests!jwt-secret:0123456789ab';
export const ADMIN_EMAIL = 'root@llmgw.test';
export const ADMIN_PASSWORD = 'correct horse battery staple 42';
export const JWT_LIFETIME_S = 86_400;

/** base64url without padding of a Buffer, a string (UTF-8) or a JSON-able object. */
export function b64url(v) {
  const buf = Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  return buf.toString('base64url');
}

/** {header, payload, signature (Buffer), signingInput} of a JWT; throws on a malformed one. */
export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`not a JWT (3 dot-separated parts): ${token}`);
  return {
    header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
    signature: Buffer.from(parts[2], 'base64url'),
    signingInput: `${parts[0]}.${parts[1]}`,
  };
}

/** HMAC over `signingInput` with `hash` ('sha256' for HS256), base64url. */
export function jwtHmac(signingInput, secret = TEST_JWT_SECRET, hash = 'sha256') {
  return crypto.createHmac(hash, secret).update(signingInput).digest('base64url');
}

/**
 * A JWT from `header` and `payload` (objects, or already-encoded strings), signed with HMAC
 * `hash` under `secret`; `signature` (a string) replaces the computed one.
 */
export function signJwt(header, payload, { secret = TEST_JWT_SECRET, hash = 'sha256', signature } = {}) {
  const h = typeof header === 'string' ? header : b64url(header);
  const p = typeof payload === 'string' ? payload : b64url(payload);
  const input = `${h}.${p}`;
  return `${input}.${signature ?? jwtHmac(input, secret, hash)}`;
}

/** Claims of a valid admin token for subject `sub`, now; `extra` overrides any of them. */
export function jwtClaims(sub, { authType = 'user', roles = ['admin'], ...extra } = {}) {
  const iat = Math.floor(Date.now() / 1000);
  return { sub, auth_type: authType, roles, iat, exp: iat + JWT_LIFETIME_S,
    jti: crypto.randomBytes(16).toString('hex'), ...extra };
}

/**
 * One admin API exchange: `token` (a JWT, or undefined for none) as a bearer token, `body` as
 * JSON (a string or Buffer is sent as is).
 */
export function adminRequest(port, token, method, p, body, { headers = {}, localAddress, timeoutMs } = {}) {
  const h = token === undefined ? { ...headers } : { authorization: `Bearer ${token}`, ...headers };
  return request(port, { method, path: p, headers: h, body, localAddress, timeoutMs });
}

/** POST /admin/auth/login; returns the answer as is (status, json, ...). */
export function adminLoginRaw(port, email, password, { localAddress } = {}) {
  return request(port, { method: 'POST', path: '/admin/auth/login', body: { email, password }, localAddress });
}

/** POST /admin/auth/login; returns the 200 answer's JSON ({token, subject, ...}), throws otherwise. */
export async function adminLogin(port, email, password, opts) {
  const r = await adminLoginRaw(port, email, password, opts);
  if (r.status !== 200 || typeof r.json?.token !== 'string') {
    throw new Error(`admin login of ${email} failed: HTTP ${r.status} ${r.text}`);
  }
  return r.json;
}

/**
 * A mock upstream and a gateway (standardConfig() unless `config`; `config` may be a function
 * of the mock's base URL) with ADMIN_JWT_SECRET = TEST_JWT_SECRET and one admin user created
 * with `llmgw admin create-user` before start, signed in. Returns {mock, gw, key, admin:
 * {email, password, id, token}, req(method, path, body, opts) as that admin, close()}.
 */
export async function startAdminStack({ mockOptions = {}, env = {}, keys = {}, threads = 2, config,
  adminEmail = ADMIN_EMAIL, adminPassword = ADMIN_PASSWORD } = {}) {
  const mock = new OpenAIMock(mockOptions);
  await mock.start();
  let gw;
  try {
    const cfg = typeof config === 'function' ? config(mock.baseUrl) : (config ?? standardConfig(mock.baseUrl));
    gw = await startGateway({ config: cfg, env: { ADMIN_JWT_SECRET: TEST_JWT_SECRET, ...env }, keys,
      threads, mockKey: mock.apiKey, serve: false });
    await gw.createAdminUser(adminEmail, adminPassword, { role: 'admin' });
    await gw.serve({ threads });
    const login = await adminLogin(gw.port, adminEmail, adminPassword);
    const admin = { email: adminEmail, password: adminPassword, id: login.subject?.id, token: login.token };
    return {
      mock,
      gw,
      key: gw.keys.main?.key,
      admin,
      req: (method, p, body, opts) => adminRequest(gw.port, admin.token, method, p, body, opts),
      async close() {
        try {
          await gw.cleanup();
        } finally {
          await mock.stop();
        }
      },
    };
  } catch (e) {
    try {
      await gw?.cleanup();
    } finally {
      await mock.stop();
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Exact decimals (money), as BigInt counts of 1e-24 USD: never floating point.

const DEC_PLACES = 24;
const DEC_ONE = 10n ** BigInt(DEC_PLACES);

/** "0.00024" → 240000000000000000000n. Throws on anything but a plain non-negative decimal. */
export function dec(s) {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(String(s));
  if (!m) throw new Error(`not a plain non-negative decimal: ${JSON.stringify(s)}`);
  const frac = m[2] ?? '';
  if (frac.length > DEC_PLACES) throw new Error(`more than ${DEC_PLACES} decimals: ${s}`);
  return BigInt(m[1]) * DEC_ONE + BigInt(frac.padEnd(DEC_PLACES, '0') || '0');
}

/** Units of 1e-24 → the shortest decimal string ("0.00024", "0", "12"). */
export function decStr(units) {
  if (units < 0n) throw new Error(`negative amount ${units}`);
  const whole = units / DEC_ONE;
  const frac = (units % DEC_ONE).toString().padStart(DEC_PLACES, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** Exact sum of decimal strings (null / undefined skipped), in units of 1e-24. */
export function decSum(values) {
  return values.filter((v) => v !== null && v !== undefined).reduce((a, v) => a + dec(v), 0n);
}
