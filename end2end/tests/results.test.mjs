// Results kept by a tracking tool beside the logs: an Optuna study's trials joined to their
// CodeCarbon runs, shown on the Pareto page (coloured by a hyper-parameter) and in the Runs
// table's metric column.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApp, hydrated, tempDir } from './helpers.mjs';

const dir = tempDir('carbon-dash-results-');
const trials = [
  // [run id, optimizer, f1, kWh]
  ['a0000000-0000-4000-8000-000000000000', 'adam', 0.81, 0.10],
  ['a1000000-0000-4000-8000-000000000000', 'sgd', 0.78, 0.05],
  ['a2000000-0000-4000-8000-000000000000', 'adam', 0.86, 0.30],
  ['a3000000-0000-4000-8000-000000000000', 'sgd', 0.70, 0.20],
  ['a4000000-0000-4000-8000-000000000000', 'lamb', 0.88, 0.60],
];
let rows = 'timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n';
trials.forEach(([id, , , kwh], i) => {
  rows += `2026-10-01T1${i}:00:00,bert-hpo,${id},600,${(kwh * 0.05).toFixed(6)},${kwh},FRA\n`;
});
mkdirSync(join(dir, 'hpo'));
writeFileSync(join(dir, 'hpo', 'emissions.csv'), rows);
// Optuna's journal storage as JournalFileBackend writes it.
const choices = JSON.stringify({ name: 'CategoricalDistribution', attributes: { choices: ['adam', 'sgd', 'lamb'] } });
let journal = `${JSON.stringify({ op_code: 0, worker_id: 'w', study_name: 'bert-hpo', directions: [2] })}\n`;
journal += `${JSON.stringify({ op_code: 3, worker_id: 'w', study_id: 0, system_attr: { 'study:metric_names': ['f1'] } })}\n`;
trials.forEach(([id, opt, f1], t) => {
  journal += `${JSON.stringify({ op_code: 4, worker_id: 'w', study_id: 0, datetime_start: '2026-10-01T10:00:00' })}\n`;
  journal += `${JSON.stringify({ op_code: 5, worker_id: 'w', trial_id: t, param_name: 'optimizer', param_value_internal: ['adam', 'sgd', 'lamb'].indexOf(opt), distribution: choices })}\n`;
  journal += `${JSON.stringify({ op_code: 8, worker_id: 'w', trial_id: t, user_attr: { codecarbon_run_id: id } })}\n`;
  journal += `${JSON.stringify({ op_code: 6, worker_id: 'w', trial_id: t, state: 1, values: [f1] })}\n`;
});
writeFileSync(join(dir, 'hpo', 'optuna_journal.log'), journal);

let app;
before(async () => { app = await startApp([dir]); });
after(async () => { await app?.stop(); });

test('an Optuna study beside the logs gives the Pareto page its metric, direction and colours', async () => {
  const { page, url } = app;
  await page.goto(`${url}/pareto?project=bert-hpo`);
  await hydrated(page);
  assert.match(await page.locator('select[name=metric]').textContent(), /f1 \(5 runs\)/);
  assert.match(await page.locator('select[name=direction]').textContent(), /as its study or carbon-dash\.toml says: higher is better/);
  await page.selectOption('select[name=colour]', 'optimizer');
  await Promise.all([page.waitForURL(/colour=optimizer/), page.click('form.pareto-form button')]);
  await page.waitForSelector('#chart-pareto svg');
  const svg = await page.locator('#chart-pareto svg').innerHTML();
  for (const value of ['adam', 'sgd', 'lamb']) assert.ok(svg.includes(`optimizer = ${value}`), `legend: ${value}`);
  const tip = await page.locator(`#chart-pareto svg a[href$="/runs/${trials[4][0]}"] circle`).getAttribute('data-tip');
  assert.match(tip, /f1 0\.88 .*optimizer lamb/);
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) {
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: `${out}/pareto-coloured.png`, fullPage: true });
  }
});

test('the Runs table shows a joined metric as a column', async () => {
  const { page, url } = app;
  await page.goto(`${url}/runs`);
  await hydrated(page);
  await Promise.all([page.waitForURL(/metric=f1/), page.selectOption('select[name=metric]', 'f1')]);
  await page.waitForSelector('th[data-metric="f1"]');
  const row = page.locator('table.runs-table tbody tr', { has: page.locator(`a[title="${trials[2][0]}"]`) });
  assert.equal(await row.locator('td.metric').textContent(), '0.86');
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) await page.screenshot({ path: `${out}/runs-metric.png`, fullPage: true });
});

test("a run's page lists its joined metrics, where each came from, and its hyper-parameters", async () => {
  const { page, url } = app;
  await page.goto(`${url}/runs/${trials[3][0]}`);
  await hydrated(page);
  const table = await page.locator('table.run-metrics').textContent();
  assert.match(table, /f1\s*0\.7/);
  assert.match(table, /hpo\/optuna_journal\.log \(joined to 5 runs by the column codecarbon_run_id/);
  assert.match(await page.locator('dl.run-params').textContent(), /optimizer\s*sgd/);
});
