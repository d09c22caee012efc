// Shared servers for the distributed tests: a real redis-server on a free port in a temporary
// directory, and a fresh schema in the PostgreSQL server that scripts/test.sh started
// (LLMGW_TEST_DATABASE_URL). A server that cannot start fails the test; nothing skips.

import { spawn, execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort, sleep, psql, pgSchema } from './harness.mjs';

// The per-test schema lives in the harness, which gives every gateway one when
// LLMGW_TEST_STORE=postgres.
export { pgSchema };

/** Sends one inline command to Redis and resolves with the raw reply text. */
export function redisCommand(port, line, timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis ${line}: timeout`)); }, timeoutMs);
    sock.on('connect', () => sock.write(`${line}\r\n`));
    sock.on('data', (d) => {
      data += d;
      if (data.endsWith('\r\n')) { clearTimeout(timer); sock.end(); resolve(data); }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export class RedisServer {
  /** `password`: the server asks for it (`requirepass`) before any other command. */
  constructor({ password } = {}) {
    this.port = 0;
    this.dir = '';
    this.proc = null;
    this.password = password;
  }

  async start(port = 0) {
    this.dir = this.dir || await fsp.mkdtemp(path.join(os.tmpdir(), 'llmgw-redis-'));
    this.port = port || this.port || await freePort();
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', this.dir,
      ...(this.password ? ['--requirepass', this.password] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    this.proc.stdout.on('data', (d) => { out += d; });
    this.proc.stderr.on('data', (d) => { out += d; });
    const spawnError = new Promise((_, reject) => this.proc.once('error', (e) => reject(new Error(
      e.code === 'ENOENT' ? 'redis-server is not installed (apt-get install -y redis-server)' : e.message))));
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const pong = await Promise.race([redisCommand(this.port, 'PING', 500), spawnError]);
        if (pong.startsWith('+PONG') || (this.password && pong.startsWith('-NOAUTH'))) return this;
      } catch (e) {
        if (/not installed/.test(e.message)) throw e;
      }
      if (Date.now() > deadline || this.proc.exitCode !== null) {
        throw new Error(`redis-server did not start on port ${this.port}: ${out}`);
      }
      await sleep(50);
    }
  }

  async stop() {
    // A process killed by a signal has signalCode set and exitCode null.
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGKILL');
    await exited;
  }

  async cleanup() {
    await this.stop();
    if (this.dir) await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * A private PostgreSQL server (scripts/pg.sh) that a test may stop and start again:
 * {url, pause(), resume(), query(sql), stop()}.
 */
export async function privatePostgres() {
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), '../../scripts/pg.sh');
  const run = (args) => new Promise((resolve, reject) => {
    // Durable commits: the outage tests kill the server and count what it acknowledged.
    execFile('bash', [script, ...args], { timeout: 120_000, env: { ...process.env, LLMGW_PG_DURABLE: '1' } },
      (err, stdout, stderr) => {
      if (err) reject(new Error(`pg.sh ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(String(stdout));
    });
  });
  const out = await run(['start']);
  const url = /LLMGW_TEST_DATABASE_URL=(\S+)/.exec(out)?.[1];
  const dir = /LLMGW_PG_DIR=(\S+)/.exec(out)?.[1];
  if (!url || !dir) throw new Error(`pg.sh start printed no URL: ${out}`);
  return {
    url,
    pause: () => run(['pause', dir]),
    resume: () => run(['resume', dir]),
    query: (sql) => psql(url, sql),
    stop: () => run(['stop', dir]),
  };
}
