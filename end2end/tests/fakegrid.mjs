// A local stand-in for Electricity Maps (token "good", zone DE only, as a free tier) and the UK
// Carbon Intensity API, answering with the responses in live/tests/fixtures, their times moved
// so that the fixtures' "now" (2026-11-30T10:17Z, in the period from 10:00) is the current half
// hour.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const FIXTURES = new URL('../../live/tests/fixtures/', import.meta.url);
const FIXTURE_PERIOD = Date.parse('2026-11-30T10:00:00Z');

const ukTime = /^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/;
function shift(v, by) {
  if (typeof v === 'string') {
    if (ukTime.test(v)) return new Date(Date.parse(v) + by).toISOString().slice(0, 16) + 'Z';
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v) && !Number.isNaN(Date.parse(v))) return new Date(Date.parse(v) + by).toISOString();
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => shift(x, by));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shift(x, by)]));
  return v;
}

export async function startFakeGrid() {
  const by = Math.floor(Date.now() / 1800000) * 1800000 - FIXTURE_PERIOD;
  const requests = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push(url.pathname + url.search);
    const send = (status, name) => {
      const body = shift(JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')), by);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const p = url.pathname;
    if (p.startsWith('/em/')) {
      if (req.headers['auth-token'] !== 'good') return send(401, 'em_401_bad_token.json');
      const zone = url.searchParams.get('zone');
      if (zone === 'DE' && p.endsWith('/carbon-intensity/latest')) return send(200, 'em_latest_de.json');
      if (zone === 'DE' && p.endsWith('/carbon-intensity/forecast')) return send(200, 'em_forecast_de.json');
      if (zone === 'DE' && p.endsWith('/carbon-intensity/history')) return send(200, 'em_history_de.json');
      return send(401, 'em_401_plan.json');
    }
    if (p === '/uk/intensity') return send(200, 'uk_intensity_now.json');
    if (p === '/uk/regional') return send(200, 'uk_regional_now.json');
    if (/^\/uk\/intensity\/[^/]+\/fw48h$/.test(p)) return send(200, 'uk_national_fw48h.json');
    if (/^\/uk\/regional\/intensity\/[^/]+\/fw48h\/regionid\/13$/.test(p)) return send(200, 'uk_region13_fw48h.json');
    return send(400, 'uk_400.json');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { em: `${base}/em`, uk: `${base}/uk`, requests, stop: () => server.close() };
}
