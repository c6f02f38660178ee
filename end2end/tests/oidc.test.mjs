// Sign-in with a real OpenID Provider (oidc-provider, started here): a person signs in in
// headless Chromium and sees their team's runs only; an admin sees every team; sign-out ends the
// session. A wrong state, a replayed callback, a tampered ID token and an expired session are
// refused. The sign-in page passes axe-core.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, startBrowser, hydrated, tempDir, violations } from './helpers.mjs';
import { startIdp, signInAtProvider, freePort, CLIENT_ID, CLIENT_SECRET } from './idp.mjs';

const dir = tempDir('carbon-dash-oidc-');
const log = (project, run, kwh) => 'timestamp,project_name,run_id,duration,emissions,energy_consumed,country_iso_code\n'
  + `2026-10-01T10:00:00,${project},${run},3600,${(kwh * 0.05).toFixed(6)},${kwh},FRA\n`;
const ALPHA_RUN = 'a1000000-0000-4000-8000-0000000000a1';
const BETA_RUN = 'b2000000-0000-4000-8000-0000000000b2';
for (const [team, project, run, kwh] of [['alpha', 'alpha-vision', ALPHA_RUN, 2],
  ['beta', 'beta-secret-project', BETA_RUN, 5]]) {
  mkdirSync(join(dir, 'logs', team, project), { recursive: true });
  writeFileSync(join(dir, 'logs', team, project, 'emissions.csv'), log(project, run, kwh));
}
const secretFile = join(dir, 'client-secret');
writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });

let idp;
let server;
let short;
let browser;
before(async () => {
  const [port, shortPort] = [await freePort(), await freePort()];
  const callback = (p) => `http://localhost:${p}/signin/callback`;
  idp = await startIdp([callback(port), callback(shortPort)]);
  const args = (p, db) => [join(dir, 'logs'), '--auth', 'oidc', '--oidc-issuer', idp.issuer, '--oidc-client-id', CLIENT_ID,
    '--oidc-client-secret-file', secretFile, '--public-url', `http://localhost:${p}`, '--admin-group', 'carbon-admins',
    '--db', join(dir, db)];
  server = await startServer(args(port, 'people.db'), { addr: `127.0.0.1:${port}` });
  server.url = `http://localhost:${port}`;
  // A second server whose sessions last 2 s.
  short = await startServer([...args(shortPort, 'short.db'), '--session-lifetime', '2s'], { addr: `127.0.0.1:${shortPort}` });
  short.url = `http://localhost:${shortPort}`;
  browser = await startBrowser();
});
after(async () => { await browser?.close(); server?.stop(); short?.stop(); idp?.stop(); });

/// From a page of `base` to signed in as `user`: the sign-in page, the provider, back.
async function signIn(page, base, user, path = '/runs') {
  await page.goto(`${base}${path}`);
  assert.match(page.url(), /\/signin\?next=/, 'a page asks for sign-in first');
  await Promise.all([page.waitForNavigation(), page.click('main a.button')]);
  await signInAtProvider(page, idp.issuer, user);
}

test('a person signs in, sees their team only, and signs out', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/runs`);
  assert.match(page.url(), /\/signin\?next=%2Fruns$/);
  assert.match(await page.locator('main').textContent(), /Sign in with localhost/);
  assert.deepEqual(await violations(page), [], 'the sign-in page passes axe-core');
  const out = process.env.CARBON_DASH_SCREENSHOTS;
  if (out) {
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: `${out}/sign-in.png`, fullPage: true });
  }
  // Anonymous scripts get 401, never a page.
  assert.equal((await fetch(`${server.url}/api/v1/runs`)).status, 401);

  await signIn(page, server.url, 'ada');
  assert.equal(new URL(page.url()).pathname, '/runs', 'back where the person was going');
  await hydrated(page);
  assert.equal(await page.locator('table.runs-table tbody tr').count(), 1);
  assert.match(await page.locator('header .account').textContent(), /ada@example\.org/);
  const seen = await page.evaluate(async () => (await fetch('/api/v1/runs')).text());
  assert.ok(seen.includes('a1000000') && !seen.includes('b2000000') && !seen.includes('beta-secret'), seen);
  // The session cookie: HttpOnly, Secure, SameSite=Lax, for this server's paths.
  const cookie = (await browser.cookies(server.url)).find((c) => c.name === '__Host-carbon_dash_signed_in');
  assert.ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Lax', JSON.stringify(cookie));
  // Beta's run is to ada what a run that does not exist is.
  const beta = await page.goto(`${server.url}/runs/${BETA_RUN}`);
  const betaText = await page.locator('main').textContent();
  const none = await page.goto(`${server.url}/runs/00000000-0000-4000-8000-000000000000`);
  assert.equal(beta.status(), none.status());
  assert.ok(!betaText.includes('beta-secret') && /not found|no run/i.test(betaText), betaText);
  if (out) {
    await page.goto(`${server.url}/`);
    await hydrated(page);
    await page.screenshot({ path: `${out}/oidc-team-overview.png`, fullPage: true });
  }
  await page.goto(`${server.url}/`);
  await hydrated(page);
  assert.deepEqual(await violations(page), [], 'the overview with the account block passes axe-core');
  // Sign out: the session ends on the server, not only in this browser.
  const value = cookie.value;
  await Promise.all([page.waitForNavigation(), page.click('header .account button')]);
  assert.match(page.url(), /\/signin\?signed_out=1$/);
  assert.match(await page.locator('main').textContent(), /You are signed out/);
  const replayed = await fetch(`${server.url}/api/v1/runs`, { headers: { cookie: `__Host-carbon_dash_signed_in=${value}` } });
  assert.equal(replayed.status, 401, 'the old cookie is dead');
  await page.close();
});

test('an admin sees every team', async () => {
  const context = await startBrowser();
  const page = await context.newPage();
  await signIn(page, server.url, 'root', '/');
  await hydrated(page);
  const seen = await page.evaluate(async () => (await fetch('/api/v1/runs')).text());
  assert.ok(seen.includes('a1000000') && seen.includes('b2000000'), seen);
  await context.close();
});

/// A simple cookie jar for fetch: name=value by name.
function jar(cookies = []) {
  const all = new Map(cookies.map((c) => [c.name, c.value]));
  return {
    header: () => [...all].map(([k, v]) => `${k}=${v}`).join('; '),
    take: (res) => {
      for (const line of res.headers.getSetCookie()) {
        const [kv] = line.split(';');
        const at = kv.indexOf('=');
        all.set(kv.slice(0, at), kv.slice(at + 1));
      }
    },
    get: (name) => all.get(name),
  };
}

test('a wrong state, a replayed callback and a tampered ID token are refused', async () => {
  const context = await startBrowser();
  const page = await context.newPage();
  // bo signs in once: the provider keeps bo's session and grant.
  await signIn(page, server.url, 'bo');
  await hydrated(page);
  // Then a sign-in by hand (a script with bo's provider cookies), held before its callback.
  const ours = jar();
  let res = await fetch(`${server.url}/signin/start?next=%2Fruns`, { redirect: 'manual' });
  ours.take(res);
  let at = res.headers.get('location');
  const theirs = jar(await context.cookies(idp.issuer));
  for (let i = 0; i < 8 && at.startsWith(idp.issuer); i += 1) {
    res = await fetch(at, { redirect: 'manual', headers: { cookie: theirs.header() } });
    theirs.take(res);
    at = new URL(res.headers.get('location'), at).toString();
  }
  assert.match(at, /\/signin\/callback\?.*code=/, 'the provider sends back a code');
  const call = (url) => fetch(url, { redirect: 'manual', headers: { cookie: ours.header() } });
  const wrong = new URL(at);
  wrong.searchParams.set('state', 'not-the-state');
  res = await call(wrong.toString());
  assert.equal(res.status, 400);
  assert.match(await res.text(), /did not begin in this browser/);
  // The right callback from another browser (without the cookie its start set) is refused, and
  // does not spend the sign-in.
  res = await fetch(at, { redirect: 'manual' });
  assert.equal(res.status, 400, 'another browser');
  res = await call(at);
  assert.equal(res.status, 303, 'the real callback signs in');
  assert.equal(res.headers.get('location'), '/runs');
  assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('__Host-carbon_dash_signed_in=') && /HttpOnly/.test(c)));
  res = await call(at);
  assert.equal(res.status, 400, 'a replayed callback');
  assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith('__Host-carbon_dash_signed_in=')));
  await context.close();

  // A token whose claims were changed (to the admin's) after the provider signed it.
  const other = await startBrowser();
  const p2 = await other.newPage();
  idp.state.tamper = true;
  try {
    await signIn(p2, server.url, 'bo');
  } finally {
    idp.state.tamper = false;
  }
  assert.match(await p2.locator('main').textContent(), /Sign-in failed: the ID token does not check out/);
  assert.equal((await other.cookies(server.url)).filter((c) => c.name === '__Host-carbon_dash_signed_in').length, 0);
  await other.close();
});

test('an expired session signs the person out', async () => {
  const context = await startBrowser();
  const page = await context.newPage();
  await signIn(page, short.url, 'ada');
  await hydrated(page);
  assert.equal((await page.evaluate(async () => (await fetch('/api/v1/runs')).status)), 200);
  const cookie = (await context.cookies(short.url)).find((c) => c.name === '__Host-carbon_dash_signed_in');
  await new Promise((r) => setTimeout(r, 2500));
  // The server ends it too (whatever a browser keeps).
  const kept = await fetch(`${short.url}/api/v1/runs`, { headers: { cookie: `__Host-carbon_dash_signed_in=${cookie.value}` } });
  assert.equal(kept.status, 401);
  assert.equal((await page.evaluate(async () => (await fetch('/api/v1/runs')).status)), 401, 'expired');
  await page.goto(`${short.url}/teams`);
  assert.match(page.url(), /\/signin\?next=%2Fteams$/);
  await context.close();
});

test('one address cannot fill the store with sign-ins under way', async () => {
  const statuses = [];
  for (let i = 0; i < 25; i += 1) {
    statuses.push((await fetch(`${short.url}/signin/start`, { redirect: 'manual' })).status);
  }
  // 20 a minute from one address (the expiry test above began one of them).
  assert.ok(statuses.filter((s) => s === 303).length <= 20, statuses.join(' '));
  assert.equal(statuses.at(-1), 429, statuses.join(' '));
});
