import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApp, hydrated } from './helpers.mjs';

let server, page;
const shots = process.env.SCREENSHOTS; // folder to save screenshots into, when set

before(async () => {
  server = await startApp();
  page = server.page;
  page.on('pageerror', (e) => console.error('page error:', e));
});

after(() => server?.stop());

test('the overview lists the demo projects and their runs', async () => {
  await page.goto(server.url + '/');
  await hydrated(page);
  const projects = await page.locator('details.project > summary .name').allTextContents();
  for (const p of ['resnet50-imagenet', 'llama-3-8b-lora', 'whisper-distill']) {
    assert.ok(projects.includes(p), `project ${p} in ${projects}`);
  }
  const runs = Number(await page.locator('.stat-value').first().textContent());
  // Each experiment lists its latest runs; one with more links to all of them on the Runs page.
  let accounted = 0;
  for (const exp of await page.locator('.tree details.experiment').all()) {
    const shown = await exp.locator('ul.runs a[href^="/runs/"]').count();
    assert.ok(shown <= 3, `at most 3 runs listed per experiment, not ${shown}`);
    const all = exp.locator('ul.runs a[href^="/runs?"]');
    accounted += (await all.count()) ? Number((await all.textContent()).match(/\d+/)[0]) : shown;
  }
  assert.equal(accounted, runs, 'every run is in the tree, listed or behind its experiment\'s link');
  if (shots) await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
});

test('clicking a run opens its page with its checkpoints', async () => {
  await page.goto(server.url + '/runs');
  await hydrated(page);
  const first = page.locator('table.runs-table tbody tr').first().locator('td a');
  const id = await first.getAttribute('title');
  await first.click();
  await page.waitForURL(`**/runs/${id}`);
  await page.waitForSelector('h1.run-id');
  assert.match(await page.locator('h1.run-id').textContent(), new RegExp(id));
  assert.ok(await page.locator('table.checkpoints tbody tr').count() >= 1);
  if (shots) await page.screenshot({ path: `${shots}/run.png`, fullPage: true });
});

test('sorting the runs table reorders it without a page load', async () => {
  await page.goto(server.url + '/runs');
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  const energies = async () => page.locator('table.runs-table tbody tr td:nth-child(6)').allTextContents();
  const before = await energies();
  await page.click('th a[data-sort="energy"]');
  await page.waitForURL(/sort=energy/);
  await page.waitForFunction(() => document.querySelector('th[aria-sort="descending"] a[data-sort="energy"]'));
  const desc = await energies();
  assert.notDeepEqual(desc, before);
  await page.click('th a[data-sort="energy"]');
  await page.waitForFunction(() => document.querySelector('th[aria-sort="ascending"] a[data-sort="energy"]'));
  const asc = await energies();
  assert.deepEqual(asc, [...desc].reverse());
  assert.equal(await page.evaluate(() => window.__noReload), true, 'no full page load happened');
  if (shots) await page.screenshot({ path: `${shots}/runs.png`, fullPage: true });
});

test('filtering by project narrows the table without a page load', async () => {
  await page.goto(server.url + '/runs');
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  const all = await page.locator('table.runs-table tbody tr').count();
  await page.selectOption('select[name="project"]', 'whisper-distill');
  await page.waitForURL(/project=whisper-distill/);
  await page.waitForFunction((n) => document.querySelectorAll('table.runs-table tbody tr').length < n, all);
  const projects = await page.locator('table.runs-table tbody tr td:nth-child(2)').allTextContents();
  assert.ok(projects.length > 0 && projects.every((p) => p === 'whisper-distill'), projects.join());
  assert.equal(await page.evaluate(() => window.__noReload), true);
});

test('the files page shows the rejected short row with its line', async () => {
  await page.goto(server.url + '/files');
  await hydrated(page);
  const speech = page.locator('section.file', { hasText: 'speech/emissions.csv' });
  assert.match(await speech.locator('table.problems').textContent(), /fields where the header has 38/);
  if (shots) await page.screenshot({ path: `${shots}/files.png`, fullPage: true });
});

test('switching the dataset recomputes a run without a page load, equivalents show their source', async () => {
  await page.goto(server.url + '/runs?project=llama-3-8b-lora');
  await hydrated(page);
  await page.locator('table.runs-table tbody tr td a').first().click();
  await page.waitForSelector('table.how');
  await page.evaluate(() => { window.__noReload = true; });
  const intensity = () => page.locator('table.how tr:nth-child(2) td.num').textContent();
  assert.equal(await intensity(), '413 g/kWh', 'Google 2024 figure for gcp us-central1');
  await page.click('a[data-dataset="codecarbon"]');
  await page.waitForURL(/dataset=codecarbon/);
  await page.waitForFunction(() => document.querySelector('table.how tr:nth-child(2) td.num')?.textContent === '430 g/kWh');
  assert.equal(await page.evaluate(() => window.__noReload), true);
  const car = page.locator('li[data-equivalent="car_km_eu"]');
  assert.match(await car.getAttribute('title'), /106\.6 g CO2 per km — European Environment Agency, 2023/);
  if (shots) await page.screenshot({ path: `${shots}/run-codecarbon.png`, fullPage: true });
});

test('the data page lists every source with its licence', async () => {
  await page.goto(server.url + '/data');
  await hydrated(page);
  const rows = await page.locator('table.sources tbody tr').count();
  assert.ok(rows >= 20, `${rows} sources`);
  assert.match(await page.locator('#source-ember-2024').textContent(), /CC BY 4\.0/);
  if (shots) await page.screenshot({ path: `${shots}/data.png`, fullPage: true });
});

test('the map shows a tooltip on hover and clicking a region selects it and updates the ranking', async () => {
  await page.goto(server.url + '/map?project=whisper-distill');
  await hydrated(page);
  await page.evaluate(() => { window.__noReload = true; });
  const marker = page.locator('circle[data-region="gcp/europe-north1"]');
  await marker.hover({ force: true });
  const tip = page.locator('.tooltip');
  await tip.waitFor();
  assert.match(await tip.textContent(), /gcp europe-north1 .*g CO₂e\/kWh.*the selection: .* here \([−+]\d+ %\)/);
  if (shots) await page.screenshot({ path: `${shots}/map-hover.png` });
  await marker.click({ force: true });
  await page.waitForURL(/region=gcp%2Feurope-north1|region=gcp\/europe-north1/);
  await page.waitForSelector('#selected-region');
  assert.match(await page.locator('#selected-region h2').textContent(), /gcp europe-north1/);
  assert.equal(await page.locator('table.whatif tr.selected').getAttribute('data-region'), 'gcp/europe-north1');
  assert.equal(await page.locator('circle.marker.selected').getAttribute('data-region'), 'gcp/europe-north1');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'no full page load');
  // The provider filter narrows the ranking and the markers.
  await page.selectOption('select[name="provider"]', 'aws');
  await page.waitForURL(/provider=aws/);
  await page.waitForFunction(() => [...document.querySelectorAll('table.whatif tbody tr')].every((r) => r.dataset.region.startsWith('aws/')));
  assert.ok(await page.locator('circle.marker').count() > 0);
  assert.equal(await page.locator('circle.marker.gcp').count(), 0);
  if (shots) await page.screenshot({ path: `${shots}/map.png`, fullPage: true });
});

test('a team page and a run page render their charts, and hovering a point shows its value', async () => {
  await page.goto(server.url + '/teams/vision-lab');
  await hydrated(page);
  assert.match(await page.locator('h1').textContent(), /Team vision-lab/);
  const bars = page.locator('#chart-monthly-by-project [data-tip]');
  assert.ok(await bars.count() >= 2, 'one hover target per bar segment');
  await bars.first().hover({ force: true });
  const tip = page.locator('.tooltip');
  await tip.waitFor();
  assert.match(await tip.textContent(), /^\d{4}-\d{2} · .+: .+ CO₂e \(\d+ runs?\)$/);
  assert.ok((await page.locator('#chart-monthly-by-project a[download$=".csv"]').getAttribute('href')).startsWith('data:text/csv'));
  if (shots) await page.screenshot({ path: `${shots}/team.png`, fullPage: true });
  await page.locator('table.top a[href^="/runs/"]').first().click();
  await page.waitForSelector('#chart-progress');
  assert.ok(await page.locator('#chart-progress [data-tip]').count() >= 2);
  assert.ok(await page.locator('#chart-power [data-tip]').count() >= 1);
  assert.equal(await page.locator("#chart-split [data-tip]").count(), 3, "CPU, GPU and RAM bars");
  assert.match(await page.locator('#chart-progress figcaption').textContent(), /Cumulative energy over \d+ checkpoints/);
  if (shots) await page.screenshot({ path: `${shots}/run-charts.png`, fullPage: true });
});
