// The Pareto view and the report: the demo sweep's front, knee and beaten CO2 in the browser, a
// click through to a run, and the report opened with the network off.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { startApp, hydrated } from './helpers.mjs';

let app;
before(async () => { app = await startApp([]); });
after(async () => { await app?.stop(); });

test('the Pareto page shows the front, the knee and what the beaten runs spent, and changes with its form', async () => {
  const { page, url } = app;
  await page.goto(`${url}/pareto?project=bert-sst2-sweep`);
  await hydrated(page);
  const api = await (await fetch(`${url}/api/v1/pareto?project=bert-sst2-sweep`)).json();
  const findings = await page.locator('ul.findings').textContent();
  assert.match(findings, /Knee \(on a linear axis\): run [0-9a-f]{8} \(eval_accuracy 0\.\d+ at [\d.]+ g CO₂e\)/);
  assert.match(findings, /This selection spent [\d.]+ kg CO₂e \([\d.]+ kg CO₂e–[\d.]+ kg CO₂e\), on \d+ runs that another run matched or beat for no more CO₂e/);
  assert.equal(await page.locator('section.pareto').getAttribute('data-knee'), api.knee_run_id);
  assert.equal(await page.locator('table.pareto-front tbody tr').count(), api.points.filter((p) => p.on_front).length);
  assert.equal(await page.locator(`table.pareto-front tr[data-run="${api.knee_run_id}"] td.mark`).textContent(), 'knee');
  // Every point is a link to its run with its figures on hover.
  const targets = page.locator('#chart-pareto svg a circle[data-tip]');
  assert.equal(await targets.count(), api.points.length);
  const knee = page.locator(`#chart-pareto svg a[href$="/runs/${api.knee_run_id}"] circle`);
  assert.match(await knee.getAttribute('data-tip'), /knee/);
  // The loss, on a log axis: lower is better, guessed from the name.
  await page.selectOption('select[name=metric]', 'eval_loss');
  await page.selectOption('select[name=scale]', 'log');
  await Promise.all([page.waitForURL(/metric=eval_loss/), page.click('form.pareto-form button')]);
  await page.waitForSelector('#chart-pareto');
  assert.match(await page.locator('select[name=direction]').textContent(), /guessed from the name: lower is better/);
  assert.match(await page.locator('#chart-pareto figcaption').textContent(), /eval_loss against k?g CO₂e/);
  await page.goto(`${url}/pareto?project=bert-sst2-sweep`);
  await hydrated(page);
  await Promise.all([page.waitForURL(/\/runs\//), page.locator(`#chart-pareto svg a[href$="/runs/${api.knee_run_id}"]`).dispatchEvent('click')]);
  assert.match(await page.locator('h1').first().textContent(), new RegExp(api.knee_run_id.slice(0, 8)));
});

test('the report opens with the network off, loads nothing, and prints on A4 and letter', async () => {
  const { page, url } = app;
  const res = await fetch(`${url}/api/v1/report?project=bert-sst2-sweep&format=html`);
  assert.equal(res.status, 200);
  const html = await res.text();
  const requests = [];
  const errors = [];
  const context = page.context();
  // Leave the app page first: its live-update stream would report the network going away.
  await page.goto('about:blank');
  await context.setOffline(true);
  await page.route('**/*', (route) => { requests.push(route.request().url()); route.abort(); });
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setViewportSize({ width: 794, height: 1123 });
  await page.setContent(html, { waitUntil: 'load' });
  assert.deepEqual(requests, [], 'no request leaves the report');
  assert.deepEqual(errors, []);
  for (const id of ['chart-duration-co2', 'chart-pareto']) {
    assert.equal(await page.locator(`#${id} svg`).count(), 1, id);
  }
  assert.match(await page.locator('#statement-tex').textContent(), /\\paragraph\{Compute and carbon footprint\.\}/);
  assert.match(await page.locator('#statement-yaml').textContent(), /co2_eq_emissions:\n {2}emissions: \d+/);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page fits A4 width (overflow ${overflow}px)`);
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) {
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: `${out}/report.png`, fullPage: true });
  }
  await page.emulateMedia({ media: 'print' });
  for (const format of ['A4', 'Letter']) {
    const pdf = await page.pdf({ format });
    assert.ok(pdf.length > 10000, `it prints on ${format}`);
    if (out) writeFileSync(`${out}/report-${format}.pdf`, pdf);
  }
  await page.unroute('**/*');
  await context.setOffline(false);
});
