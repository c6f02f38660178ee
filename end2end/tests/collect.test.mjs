// Collected runs: a tracker's posts (CodeCarbon 3.3.2's body) show up on an open page without a
// reload, beside the logs' runs, and the run page says where the run came from.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startApp, hydrated, tempDir } from './helpers.mjs';

const BIN = process.env.CARBON_DASH_BIN ?? '../target/debug/carbon-dash';
let server, page, db, experiment, token;

const cli = (...args) => execFileSync(BIN, [...args, '--db', db], { encoding: 'utf8' });
const value = (out, key) => out.split('\n').find((l) => l.startsWith(`${key} = `)).slice(key.length + 3);

before(async () => {
  db = join(tempDir('carbon-dash-collect-'), 'carbon-dash.db');
  cli('project', 'add', 'vision', '--team', 'ml');
  experiment = value(cli('experiment', 'add', '--project', 'vision', '--name', 'vit', '--country', 'FRA'), 'experiment_id');
  token = value(cli('token', 'add', '--project', 'vision'), 'api_key');
  server = await startApp(['--collect', '--db', db]);
  page = server.page;
});

after(() => server?.stop());

async function post(path, body) {
  const res = await fetch(server.url + path, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-token': token }, body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text);
}

const record = (run, i) => ({
  timestamp: `2026-11-30T10:00:${String(2 * i).padStart(2, '0')}.000000+01:00`, run_id: run, duration: 2,
  emissions_sum: 0.00005, emissions_rate: 0.000025, cpu_power: 30, gpu_power: 0, ram_power: 10,
  cpu_energy: 0.00075, gpu_energy: 0, ram_energy: 0.00025, energy_consumed: 0.001,
  cpu_utilization_percent: 33, gpu_utilization_percent: 0, ram_utilization_percent: 4, wue: 0,
});

test('a collected run grows on its open page as the tracker posts', async () => {
  const { id } = await post('/runs', {
    timestamp: '2026-11-30T10:00:00.000000+01:00', experiment_id: experiment, os: 'Linux', python_version: '3.11.7',
    codecarbon_version: '3.3.2', cpu_count: 8, cpu_model: 'Intel Xeon', gpu_count: 0, gpu_model: '',
    longitude: null, latitude: null, region: null, provider: null, ram_total_size: 32, tracking_mode: 'machine',
  });
  await post('/emissions', record(id, 1));
  // Note when the page's live-update stream has opened, so the records below are posted after it.
  await page.addInitScript(() => {
    const Source = window.EventSource;
    window.EventSource = class extends Source {
      constructor(...args) { super(...args); this.addEventListener('open', () => { window.__liveOpen = true; }); }
    };
  });
  await page.goto(`${server.url}/runs/${id}`);
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  const rows = () => page.locator('table.checkpoints tbody tr').count();
  // The first record may land between the page's rendering and its stream opening: the next
  // posts bring the page up to date either way.
  await page.waitForFunction(() => window.__liveOpen === true, null, { timeout: 10000 });
  await post('/emissions', record(id, 2));
  await post('/emissions', record(id, 3));
  await page.waitForFunction(() => document.querySelectorAll('table.checkpoints tbody tr').length === 3, null, { timeout: 15000 });
  assert.equal(await rows(), 3);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'updated without a reload');
  const text = await page.locator('main').textContent();
  assert.match(text, /posted live by a CodeCarbon tracker/);
  assert.match(text, /3 Wh/, 'three records of 1 Wh each');
  // The team page counts it with the project's team.
  await page.goto(`${server.url}/teams`);
  await hydrated(page);
  assert.match(await page.locator('main').textContent(), /ml[\s\S]*vision/);
});
