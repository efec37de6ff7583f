// A real OpenID provider for the SSO tests: the certified `oidc-provider` package, on
// http://127.0.0.1:<port> only, with static users read from a JSON file on every request (so a
// test can remove a user from a group between two sign-ins) and a `groups` claim in the ID token,
// as a bank's IdP (Entra ID, ADFS, Keycloak) sends its AD/LDAP groups.
//
// Run from the folder where `npm ci` installed tests/oidc/package.json (`make oidc`):
//   OIDC_PORT=9000 OIDC_USERS=users.json OIDC_CLIENT_ID=cqa OIDC_CLIENT_SECRET=s \
//   OIDC_REDIRECT_URI=http://127.0.0.1:8501/oauth2callback node provider.mjs
// users.json: {"alice": {"password": "...", "name": "...", "email": "...", "groups": ["CQA-Staff"]}}
// It prints "oidc-provider listening on <issuer>" when ready, and stops on SIGTERM.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('OIDC_PORT'));
const usersFile = env('OIDC_USERS');
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = env('OIDC_REDIRECT_URI');

const users = () => JSON.parse(fs.readFileSync(usersFile, 'utf8'));
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>${body}</body></html>`;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('OIDC_CLIENT_ID'),
    client_secret: env('OIDC_CLIENT_SECRET'),
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // The groups must be in the ID token: Streamlit's st.login reads the ID token's claims only.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out of the test IdP', `${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out of the test IdP', '');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('IdP error', `<pre>${esc(JSON.stringify(out))}</pre>`);
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  // A first-party client: no consent screen (as a bank's IdP is set up for its own apps).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const user = users()[id];
    if (!user) {
      return undefined;
    }
    return {
      accountId: id,
      async claims() {
        const now = users()[id] || { groups: [] }; // read again: group changes show at the next sign-in
        return {
          sub: id, preferred_username: id, name: now.name || id, email: now.email || `${id}@bank.example`,
          email_verified: true, groups: now.groups || [],
        };
      },
    };
  },
});

const loginForm = (uid, message = '') => page('Test IdP sign-in', `${message ? `<p role="alert">${esc(message)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label>IdP user <input name="username" autocomplete="off"></label>
<label>IdP password <input name="password" type="password"></label>
<button type="submit">Sign in at the IdP</button></form>`);

const readForm = (req) => new Promise((resolve, reject) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; if (body.length > 1e5) req.destroy(); });
  req.on('end', () => resolve(new URLSearchParams(body)));
  req.on('error', reject);
});

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = req.url.match(/^\/interaction\/([\w-]+)(\/login)?$/);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginForm(details.uid));
      return;
    }
    const form = await readForm(req);
    const username = form.get('username') || '';
    const user = users()[username];
    if (!user || user.password !== form.get('password')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginForm(details.uid, 'Wrong IdP user or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction error: ${err.message}`);
  }
});

server.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
