// "When to run": the planner page and the grid-now badges, with a local provider, and offline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, hydrated } from './helpers.mjs';
import { startFakeGrid } from './fakegrid.mjs';

let grid, live, offline;

before(async () => {
  grid = await startFakeGrid();
  live = await startApp(['--live', '--uk-intensity-url', grid.uk, '--electricitymaps-token', 'good', '--electricitymaps-url', grid.em]);
  offline = await startApp([]);
});

after(async () => {
  await live?.stop();
  await offline?.stop();
  grid?.stop();
});

test('the planner recommends a start from the forecast, with the saving, the chart and the best elsewhere', async () => {
  const { page, url } = live;
  await page.goto(`${url}/plan`);
  await hydrated(page);
  await page.fill('input[name=zone]', 'GB');
  await page.fill('input[name=duration]', '3h');
  await page.fill('input[name=energy_kwh]', '10');
  await Promise.all([page.waitForURL(/\/plan\?.*zone=GB/), page.click('form.plan-form button')]);
  await page.waitForSelector('p.plan-headline');
  const headline = await page.locator('p.plan-headline').textContent();
  assert.match(headline, /forecast\s*Start \d{4}-\d\d-\d\d \d\d:\d\d UTC \((now|in [^)]+)\): [\d.]+ g\/kWh on average, against [\d.]+ g\/kWh starting now: \d+ % lower\./, headline);
  assert.match(await page.locator('.src').first().textContent(), /UK Carbon Intensity API \(NESO\): forecast, direct \(operational\) average/);
  assert.equal(await page.locator('#chart-plan-forecast svg').count(), 1, 'the forecast chart');
  // The same answer as the API's, which names its figures plainly.
  const api = await (await fetch(`${url}/api/v1/plan?zone=GB&duration=3h&energy_kwh=10`)).json();
  for (const k of ['best_start', 'best_end', 'best_mean_g_per_kwh', 'now_mean_g_per_kwh', 'saving_pct', 'saving_kg', 'source']) {
    assert.ok(api[k] !== undefined && api[k] !== null, k);
  }
  assert.match(api.best_start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Date.parse(api.best_start) >= Date.parse(api.now) - 1000, 'never in the past');
  const saved = await page.locator('.stat', { hasText: 'Saved by waiting' }).locator('.stat-value').textContent();
  assert.match(saved, /kg|g/);
  // Where and when: the place and the cleanest regions, one row each, best first.
  const rows = await page.locator('table.elsewhere tbody tr').count();
  assert.ok(rows >= 3, `${rows} rows`);
  assert.equal(await page.locator('table.elsewhere tr[data-zone=GB] .badge').textContent(), 'forecast');
  // A past run repeated: its energy and its own power profile.
  const runs = await (await fetch(`${url}/api/v1/runs?limit=50`)).json();
  const run = runs.find((r) => r.energy_kwh > 0);
  const again = await (await fetch(`${url}/api/v1/plan?zone=GB&run_id=${encodeURIComponent(run.run_id)}`)).json();
  assert.match(again.job, new RegExp(`^run ${run.run_id}: `));
  assert.ok(Math.abs(again.energy_kwh - run.energy_kwh) < 1e-9, 'the run\'s energy');
  assert.ok(again.saving_kg !== null);
  // A bad query says what to change.
  await page.goto(`${url}/plan?zone=GB&duration=1.5h`);
  assert.match(await page.locator('p.error').textContent(), /write it as 90m, 3h, 1h30m/);
  const bad = await fetch(`${url}/api/v1/plan?zone=XX&duration=1h`);
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /no zone 'XX'/);
});

test('the regions page shows the grid now where a live provider covers a region, and its age', async () => {
  const { page, url } = live;
  await page.goto(`${url}/regions`);
  await hydrated(page);
  const london = page.locator('tr', { has: page.locator('a', { hasText: /^europe-west2$/ }) });
  await london.locator('.now .badge').waitFor({ timeout: 10000 });
  assert.equal(await london.locator('.now .badge').textContent(), 'forecast');
  assert.match(await london.locator('.now').textContent(), /171 g\/kWh direct · for \d\d:\d\d UTC/);
  assert.equal(await page.locator('tr', { has: page.locator('a', { hasText: /^us-west1$/ }) }).locator('.badge').textContent(), 'annual');
});

test('offline, the planner and the pages say so and work as before', async () => {
  const { page, url } = offline;
  await page.goto(`${url}/plan?zone=GB&duration=3h&energy_kwh=10`);
  await hydrated(page);
  const text = await page.locator('main').textContent();
  assert.match(text, /No forecast for Great Britain: its annual average is \d+ g\/kWh at any hour/);
  assert.match(text, /annual average, not live: start carbon-dash with --live/);
  assert.equal(await page.locator('p.plan-headline .badge').textContent(), 'annual');
  const api = await (await fetch(`${url}/api/v1/plan?zone=GB&duration=3h&energy_kwh=10`)).json();
  assert.equal(api.live, false);
  assert.equal(api.best_start, null);
  await page.goto(`${url}/regions`);
  await hydrated(page);
  await page.locator('#grid-now').waitFor();
  assert.match(await page.locator('#grid-now').textContent(), /annual average, not live/);
  assert.equal(await page.locator('.now .badge.live, .now .badge.forecast').count(), 0);
});
