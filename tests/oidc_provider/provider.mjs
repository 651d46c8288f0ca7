// A real OpenID provider for the tests: the certified `oidc-provider` (npm), configured from
// one JSON document in OIDC_PROVIDER_CONFIG:
//   {"issuer", "port", "module" (path of oidc-provider's lib/index.js), "jwk" (private signing key),
//    "clients": [...client metadata...], "accounts": {"<login>": {claims}}}
// Login uses the provider's development interactions (any known login, no password); consent is
// granted for every client, as a city's identity provider does for its own applications.
import { pathToFileURL } from 'node:url';

const config = JSON.parse(process.env.OIDC_PROVIDER_CONFIG);
const { default: Provider } = await import(pathToFileURL(config.module).href);

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [config.jwk] },
  cookies: { keys: [config.cookie_key] },
  scopes: ['openid', 'profile', 'email', 'roles', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    roles: ['roles', 'groups'],
  },
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection);
  // here the gateway's back-channel logout endpoint is on loopback, as on a test machine.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  async findAccount(ctx, id) {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email roles');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
// What the tests read when a logout does not arrive.
provider.on('backchannel.success', (client) => console.log(`backchannel logout sent to ${client.clientId}`));
provider.on('backchannel.error', (client, error) => console.log(`backchannel logout to ${client.clientId} failed: ${error}`));
provider.on('end_session.success', () => console.log('session ended'));
provider.on('server_error', (ctx, error) => console.log(`server error: ${error}`));
provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
