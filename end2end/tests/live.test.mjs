// Live serve: a checkpoint appended to a watched log shows up on an open page without a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, hydrated, tempDir } from './helpers.mjs';

const HEADER = 'timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n';
const row = (run, s) => `2026-10-01T10:00:${String(s).padStart(2, '0')},live,${run},${s},${s * 1e-5},${s * 2e-4},FRA\n`;

let server, page, file;

before(async () => {
  const dir = tempDir('carbon-dash-live-');
  mkdirSync(join(dir, 'team'));
  file = join(dir, 'team', 'emissions.csv');
  writeFileSync(file, HEADER + row('r1', 10));
  server = await startApp([dir]);
  page = server.page;
});

after(() => server?.stop());

test('an appended checkpoint and a new run appear on the open page without a reload', async () => {
  await page.goto(server.url + '/runs/r1');
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  const rows = () => page.locator('table.checkpoints tbody tr').count();
  assert.equal(await rows(), 1);
  await page.waitForTimeout(300); // the event stream is open
  const start = Date.now();
  appendFileSync(file, row('r1', 20));
  await page.waitForFunction(() => document.querySelectorAll('table.checkpoints tbody tr').length === 2, null, { timeout: 5000 });
  const elapsed = Date.now() - start;
  console.log(`appended checkpoint on screen after ${elapsed} ms`);
  assert.ok(elapsed < 2000, `${elapsed} ms`);
  await page.goto(server.url + '/runs');
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  await page.waitForTimeout(300);
  appendFileSync(file, row('r2', 5));
  await page.waitForFunction(() => document.querySelector('#runs-count')?.textContent.includes('of 2 runs'), null, { timeout: 5000 });
  assert.equal(await page.evaluate(() => window.__noReload), true);
});
