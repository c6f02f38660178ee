// A real OpenID Provider for the sign-in tests: `oidc-provider` (a certified implementation),
// with one client and a user per team. Its own development login and consent pages stand in for
// an organisation's. `tamper` alters the ID token in the token endpoint's answer (its claims
// changed, its signature kept) to show that such a token is refused.
import http from 'node:http';
import Provider from 'oidc-provider';

export const USERS = {
  ada: { email: 'ada@example.org', groups: ['alpha'] },
  bo: { email: 'bo@example.org', groups: ['beta'] },
  root: { email: 'root@example.org', groups: ['carbon-admins'] },
};

export const CLIENT_ID = 'carbon-dash';
export const CLIENT_SECRET = 'a-client-secret-for-the-tests-only';

/// A free TCP port on 127.0.0.1.
export async function freePort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/// Starts the provider; `redirects`: the callback URLs of the servers that sign in with it.
export async function startIdp(redirects) {
  const port = await freePort();
  const issuer = `http://localhost:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirects,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    // Required of every client (the default asks it only of public ones).
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    findAccount: async (ctx, id) => {
      const user = USERS[id];
      if (!user) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, email: user.email, email_verified: true, name: id, groups: user.groups }),
      };
    },
    cookies: { keys: ['cookie-key-for-the-tests-only'] },
    features: { devInteractions: { enabled: true } },
  });
  // Quiet about its development defaults (keys, interactions): they are what a test wants.
  provider.on('server_error', (ctx, err) => console.error('oidc-provider:', err));
  const state = { tamper: false, tokenCalls: 0 };
  const handle = provider.callback();
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/token')) {
      state.tokenCalls += 1;
      if (state.tamper) {
        const end = res.end.bind(res);
        res.end = (body, ...rest) => {
          try {
            const answer = JSON.parse(body.toString());
            const [head, claims, sig] = answer.id_token.split('.');
            const c = JSON.parse(Buffer.from(claims, 'base64url').toString());
            c.sub = 'root';
            c.email = USERS.root.email;
            answer.id_token = [head, Buffer.from(JSON.stringify(c)).toString('base64url'), sig].join('.');
            const text = JSON.stringify(answer);
            res.setHeader('content-length', Buffer.byteLength(text));
            return end(text, ...rest);
          } catch {
            return end(body, ...rest);
          }
        };
      }
    }
    handle(req, res);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { issuer, state, stop: () => server.close() };
}

/// Signs in at the provider's pages as `user` (when it asks), then lets it send the browser back.
export async function signInAtProvider(page, issuer, user) {
  for (let i = 0; i < 6 && page.url().startsWith(issuer); i += 1) {
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', user);
      await page.fill('input[name="password"]', 'any');
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    } else if (await page.locator('button[type="submit"]').count()) {
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    } else {
      await page.waitForNavigation({ timeout: 5000 }).catch(() => {});
    }
  }
}
