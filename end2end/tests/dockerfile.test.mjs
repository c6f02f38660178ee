// The container's command and health check, run outside Docker (no engine runs here): the
// Dockerfile's CMD and HEALTHCHECK are read from the file itself, so they cannot drift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './helpers.mjs';

const BIN = process.env.CARBON_DASH_BIN ?? '../target/debug/carbon-dash';
const SITE = process.env.CARBON_DASH_SITE ?? '../site';
const dockerfile = readFileSync('../Dockerfile', 'utf8');
const json = (instr) => JSON.parse(dockerfile.match(new RegExp(`^${instr} (\\[.*\\])$`, 'm'))[1]);

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

test("the image's command serves /logs read-only and its health check passes", async () => {
  const cmd = json('CMD');
  const health = json('HEALTHCHECK CMD');
  assert.deepEqual(cmd.slice(0, 3), ['carbon-dash', 'serve', '/logs']);
  assert.ok(cmd.includes('--read-only'), 'read-only by default');
  assert.match(dockerfile, /^USER carbon$/m);
  assert.match(dockerfile, /^VOLUME \/logs$/m);
  assert.match(dockerfile, /^ENV CARBON_DASH_CACHE_DIR=\/tmp\//m, 'the parse cache outside the read-only logs');
  assert.equal(dockerfile.match(/^EXPOSE /gm).length, 1, 'one port');
  assert.match(dockerfile, /^RUN \.\/x build --release$/m, 'the README build for hosting');

  const logs = tempDir('carbon-dash-image-');
  writeFileSync(join(logs, 'emissions.csv'), 'timestamp,project_name,run_id,duration,emissions,energy_consumed\n2026-10-01T10:00:00,p,r1,60,0.001,0.01\n');
  const port = String(await freePort());
  const sub = (a) => a.replace('/logs', logs).replace('3000', port);
  const proc = spawn(BIN, cmd.slice(1).map(sub), { env: { ...process.env, CARBON_DASH_SITE_ROOT: SITE }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      let out = '';
      proc.stdout.on('data', (c) => { out += c; if (out.includes('Serving on')) resolve(); });
      proc.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    execFileSync(health[0], health.slice(1).map((a) => a.replaceAll('3000', port)), { timeout: 10000 });
    const home = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(home.status, 200);
    const upload = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: new FormData() });
    assert.equal(upload.status, 403, 'no writes in the default command');
  } finally {
    proc.kill();
  }
});
