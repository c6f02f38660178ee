// Other trackers' logs in a served folder beside CodeCarbon's: every run in the Runs table with its
// tracker, the Tracker filter, a carbontracker run's page saying what its CO2 rests on, and the
// Files page naming each tool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, hydrated, tempDir } from './helpers.mjs';

const dir = tempDir('carbon-dash-trackers-');
const put = (path, text) => {
  mkdirSync(join(dir, path, '..'), { recursive: true });
  writeFileSync(join(dir, path), text);
};
put('cc/emissions.csv',
  'timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n' +
  '2026-10-01T10:00:00,bert,c0000000-0000-4000-8000-000000000000,600,0.0011,0.02,FRA\n');
const stem = '4242.139990_2026-10-02T080000Z';
put(`ct/${stem}_carbontracker.log`,
  '2026-10-02 08:00:00 - carbontracker version 2.4.7\n' +
  '2026-10-02 08:00:00 - Only predicted and actual consumptions are multiplied by a PUE coefficient of 1.58 (Daniel Bizo, 2023, Uptime Institute Global Data Center Survey).\n' +
  '2026-10-02 08:00:01 - The following components were found: GPU with device(s) NVIDIA A100-SXM4-40GB. CPU with device(s) AMD EPYC 7742 64-Core Processor.\n' +
  '2026-10-02 08:30:01 - Epoch 1:\n2026-10-02 08:30:01 - Duration: 0:30:00.00\n' +
  '2026-10-02 08:30:01 - Average power usage (W) for gpu: [310.5]\n2026-10-02 08:30:01 - Average power usage (W) for cpu: 95.2\n' +
  '2026-10-02 08:30:02 - Carbon intensities (gCO2eq/kWh) fetched every 900 s at detected location: Copenhagen, Capital Region, DK: [140.0, 151.0]\n');
put(`ct/${stem}_carbontracker_output.log`,
  '2026-10-02 08:30:02 - CarbonTracker: Average carbon intensity during training was 145.50 gCO2eq/kWh. \n' +
  '2026-10-02 08:30:02 - CarbonTracker: \nActual consumption for 1 epoch(s):\n\tTime:\t0:30:00\n' +
  '\tEnergy:\t0.320343000000 kWh\n\tCO2eq:\t46.609906500000 g\n\tThis is equivalent to:\n\t0.43 km travelled by car\n');
put('eco/emission.csv',
  'id,project_name,experiment_description,epoch,start_time,duration(s),power_consumption(kWh),CO2_emissions(kg),CPU_name,GPU_name,OS,region/country,cost\n' +
  'e0000000-0000-4000-8000-000000000000,resnet,baseline,"epoch: 1, loss: 0.9, ",2026-10-03 09:00:00,3600,0.25,0.0169,"AMD EPYC/1 device(s), TDP:240.0",NVIDIA A100/1 device(s),Linux,FR,0\n' +
  'e0000000-0000-4000-8000-000000000000,resnet,baseline,"epoch: 2, loss: 0.6, ",2026-10-03 10:00:00,3600,0.26,0.0176,"AMD EPYC/1 device(s), TDP:240.0",NVIDIA A100/1 device(s),Linux,FR,0\n');
put('zeus/windows.csv',
  'start_time,window_name,elapsed_time,gpu0_energy,gpu1_energy\n' +
  '1791000000.5,epoch_1,1800.0,540000.0,530000.0\n1791001800.5,epoch_2,1800.0,545000.0,535000.0\n' +
  '1791000000.0,training,3601.0,1085000.0,1066000.0\n');
put('exp-vit/impacttracker/data.json', [0, 1, 2, 3].map((i) => JSON.stringify({
  timestamp: 1791100000 + 60 * i, rapl_estimated_attributable_power_draw: 80 + i,
  nvidia_estimated_attributable_power_draw: 290 + i, average_gpu_estimated_utilization_absolute: 0.9,
})).join('\n') + '\n');

let app;
before(async () => { app = await startApp([dir]); });
after(async () => { await app?.stop(); });

test('the Runs table names every run\'s tracker and filters by it', async () => {
  const { page, url } = app;
  await page.goto(`${url}/runs`);
  await hydrated(page);
  const tools = await page.locator('table.runs-table td.tool').allTextContents();
  for (const t of ['CodeCarbon', 'carbontracker 2.4.7', 'eco2AI', 'Zeus', 'experiment-impact-tracker']) {
    assert.ok(tools.includes(t), `${t} in ${tools}`);
  }
  assert.equal(tools.length, 5, 'the two carbontracker logs are one run');
  await Promise.all([page.waitForURL(/tool=eco2AI/), page.selectOption('select[name=tool]', 'eco2AI')]);
  await page.waitForFunction(() => document.querySelectorAll('table.runs-table td.tool').length === 1);
  const row = page.locator('table.runs-table tbody tr');
  assert.equal(await row.locator('td.tool').textContent(), 'eco2AI');
  assert.match(await row.textContent(), /510 Wh/, 'its two epochs summed');
  assert.match(await row.locator('td.gap').textContent(), /the other tracker's own intensity and PUE/);
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) {
    mkdirSync(out, { recursive: true });
    await page.goto(`${url}/runs`);
    await hydrated(page);
    await page.screenshot({ path: `${out}/runs-trackers.png`, fullPage: true });
  }
});

test('a carbontracker run shows its tool, its PUE, its epochs and what its CO2 rests on', async () => {
  const { page, url } = app;
  await page.goto(`${url}/runs/carbontracker-${stem}`);
  await hydrated(page);
  const body = await page.locator('main').textContent();
  assert.match(body, /carbontracker, PUE 1\.58 included/);
  assert.match(body, /carbontracker 2\.4\.7 \(carbontracker output log\)/);
  assert.match(body, /Its CO₂ rests on\s*carbontracker's 145\.50 gCO2eq\/kWh on average \(detected location Copenhagen, Capital Region, DK/);
  assert.match(body, /Denmark/, 'the detected country, for the recomputation');
  assert.match(body, /NVIDIA A100-SXM4-40GB/);
  const sources = await page.locator('table.checkpoints tbody td:last-child').allTextContents();
  assert.ok(sources.some((s) => s.includes('_carbontracker.log')) && sources.some((s) => s.includes('_output.log')), `${sources}`);
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) await page.screenshot({ path: `${out}/run-carbontracker.png`, fullPage: true });
});

test('the Files page names each tool', async () => {
  const { page, url } = app;
  await page.goto(`${url}/files`);
  await hydrated(page);
  const text = await page.locator('main').textContent();
  for (const kind of ['carbontracker log 2.4.7', 'carbontracker output log', 'eco2AI CSV', 'Zeus windows CSV', 'experiment-impact-tracker data']) {
    assert.ok(text.includes(kind), kind);
  }
});

test('the map and its what-if take a tracker\'s runs as the selection', async () => {
  const { page, url } = app;
  await page.goto(`${url}/map?tool=eco2AI`);
  await hydrated(page);
  assert.match(await page.locator('p.hint').first().textContent(), /Selection: eco2AI's runs — 1 runs, 510 Wh/);
  assert.equal(await page.locator('select[name=tool]').inputValue(), 'eco2AI');
});
