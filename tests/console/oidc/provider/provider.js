// A real OpenID provider for the console's sign-in tests: panva's oidc-provider, configured by the
// environment, with its own (development) login page. Not for production: any password is accepted
// for the accounts listed in OIDC_ACCOUNTS_FILE.
//
//   OIDC_PORT            port to listen on (loopback only)
//   OIDC_ISSUER          the issuer URL (default http://localhost:<port>)
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma-separated)
//   OIDC_ACCOUNTS_FILE   JSON {"<login>": {"email": …, "name": …, "groups": […], …more claims}},
//                        read at every sign-in (a test may add accounts while the provider runs)
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const port = Number(env('OIDC_PORT'));
const issuer = env('OIDC_ISSUER', `http://localhost:${port}`);
const clientId = env('OIDC_CLIENT_ID');
const accountsFile = env('OIDC_ACCOUNTS_FILE');

const accounts = () => JSON.parse(readFileSync(accountsFile, 'utf8'));

// A signing key of this run's own: nothing to leak, nothing shared between runs.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(6).toString('hex'), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: env('OIDC_CLIENT_SECRET'),
      redirect_uris: env('OIDC_REDIRECT_URIS').split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signing] },
  cookies: { keys: [randomBytes(16).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // The scopes' claims go into the ID token too (as Keycloak, Okta and Entra can be told to do):
  // bulkops reads the ID token only, never the userinfo endpoint.
  conformIdTokenClaims: false,
  // PKCE is required for every client (the default) and only S256 is offered.
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = accounts()[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email_verified: true, ...account };
      },
    };
  },
  // bulkops is a first-party client: no consent screen, the requested scopes are granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
});

createServer(provider.callback()).listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening: ${issuer}`);
});
