// The admin's limits on namespaced stores: which endpoints (--allowed-endpoints)
// and which directories (--local-store-root) they may name, checked by every
// provider before it builds anything.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, realpath, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyStore, ProviderSpec } from '../../../src/api/types.js';
import {
  PolicyReasons,
  allowedLocalPath,
  checkStoreEndpoints,
  endpointAllowed,
  parseAllowedEndpoints,
  printableEndpoint,
  storeEndpoints,
} from '../../../src/providers/policy.js';
import { StorePolicyError, type ProviderContext, type StorePolicy } from '../../../src/providers/provider.js';
import { providers } from '../../../src/providers/registry.js';
import { rejectionOf } from '../helpers/index.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const VPCE = 'https://vpce-1.kms.eu-west-1.vpce.amazonaws.com';

function namespaced(provider: ProviderSpec): AnyStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'store', namespace: 'team-a' },
    spec: { provider },
  };
}

function cluster(provider: ProviderSpec): AnyStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name: 'store' },
    spec: { provider },
  };
}

const policy = (allowedEndpoints: string[], localStoreRoot?: string): StorePolicy => ({
  allowedEndpoints,
  localStoreRoot,
});

describe('store policy: endpoints', () => {
  it('a URL prefix matches scheme, host and port exactly and the path at a / boundary, after normalisation', () => {
    const allowed = [VPCE, 'http://moto.test:5000/base/'];
    for (const ok of [
      VPCE,
      `${VPCE}/`,
      'HTTPS://VPCE-1.KMS.EU-WEST-1.VPCE.AMAZONAWS.COM:443',
      `${VPCE}/any/path`,
      'http://moto.test:5000/base',
      'http://moto.test:5000/base/x',
      'http://moto.test:5000/other/../base/x',
    ])
      expect(endpointAllowed(ok, allowed), ok).to.equal(true);
    for (const refused of [
      'http://vpce-1.kms.eu-west-1.vpce.amazonaws.com', // another scheme
      `${VPCE}:8443`, // another port
      'https://vpce-1.kms.eu-west-1.vpce.amazonaws.com.evil.example', // a longer host
      'https://evil.example/https://vpce-1.kms.eu-west-1.vpce.amazonaws.com',
      'http://moto.test:5000/basement', // not at a / boundary
      'http://moto.test:5000/base/../admin', // .. leaves the prefix
      'http://moto.test:5000/base/%2e%2e/admin', // so does an encoded ..
      'http://moto.test:5000/', // above the prefix
      'https://user:pw@vpce-1.kms.eu-west-1.vpce.amazonaws.com', // user info never
      `${VPCE}/?x=1`, // nor a query
      'not a url',
    ])
      expect(endpointAllowed(refused, allowed), refused).to.equal(false);
  });

  it('a *.suffix pattern matches hosts under it on any port, https unless a scheme is given', () => {
    expect(endpointAllowed('https://a.example.com', ['*.example.com'])).to.equal(true);
    expect(endpointAllowed('https://a.b.example.com:8443/x', ['*.example.com'])).to.equal(true);
    expect(endpointAllowed('https://example.com', ['*.example.com'])).to.equal(false);
    expect(endpointAllowed('https://badexample.com', ['*.example.com'])).to.equal(false);
    expect(endpointAllowed('http://a.example.com', ['*.example.com'])).to.equal(false);
    expect(endpointAllowed('http://a.svc.cluster.local:4566', ['http://*.svc.cluster.local'])).to.equal(true);
  });

  it('the flag is a comma list; a bad entry stops the operator at start', () => {
    expect(parseAllowedEndpoints(` ${VPCE} , *.example.com,,`)).to.deep.equal([VPCE, '*.example.com']);
    expect(parseAllowedEndpoints('')).to.deep.equal([]);
    for (const bad of ['ftp://x', 'https://u:p@x', 'https://x/?q', '*.', 'x.*.com', '*.a/b'])
      expect(() => parseAllowedEndpoints(bad), bad).to.throw(/allowed endpoint/);
  });

  it('finds every endpoint a spec names: the block, its failover, decrypt.kms and its failover', () => {
    const store = namespaced({
      awsSecretsManager: {
        region: 'eu-west-1',
        endpoint: 'https://a',
        failover: [{ region: 'eu-central-1' }, { endpoint: 'https://b' }],
        decrypt: { kms: { endpoint: 'https://c', failover: [{ endpoint: 'https://d' }] } },
      },
    });
    expect(storeEndpoints(store)).to.deep.equal([
      { field: 'spec.provider.awsSecretsManager.endpoint', endpoint: 'https://a' },
      { field: 'spec.provider.awsSecretsManager.failover[1].endpoint', endpoint: 'https://b' },
      { field: 'spec.provider.awsSecretsManager.decrypt.kms.endpoint', endpoint: 'https://c' },
      { field: 'spec.provider.awsSecretsManager.decrypt.kms.failover[0].endpoint', endpoint: 'https://d' },
    ]);
    expect(
      storeEndpoints(
        namespaced({
          local: { path: '/x', masterKeySecretRef: { name: 'k' }, decrypt: { kms: { endpoint: 'https://e' } } },
        }),
      ),
    ).to.deep.equal([{ field: 'spec.provider.local.decrypt.kms.endpoint', endpoint: 'https://e' }]);
  });

  it('refuses a namespaced store naming an endpoint outside the list, naming the field and endpoint (not its user info)', () => {
    const store = namespaced({
      awsParameterStore: { region: 'eu-west-1', failover: [{ endpoint: 'http://user:secret@169.254.169.254/latest' }] },
    });
    let err: unknown;
    try {
      checkStoreEndpoints(store, policy([VPCE]));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(StorePolicyError);
    const e = err as StorePolicyError;
    expect(e.reason).to.equal(PolicyReasons.EndpointNotAllowed);
    expect(e.retry).to.equal('terminal');
    expect(e.clientUnusable).to.equal(false);
    expect(e.message)
      .to.contain('SecretStore team-a/store')
      .and.contain('spec.provider.awsParameterStore.failover[0].endpoint');
    expect(e.message).to.contain('"http://169.254.169.254/latest"').and.not.contain('secret');
  });

  it('with no list, a namespaced store may use no custom endpoint at all; the regions’ own endpoints are fine', () => {
    expect(() =>
      checkStoreEndpoints(namespaced({ awsKms: { region: 'eu-west-1', endpoint: VPCE } }), policy([])),
    ).to.throw(StorePolicyError, /without --allowed-endpoints/);
    checkStoreEndpoints(
      namespaced({ awsKms: { region: 'eu-west-1', failover: [{ region: 'us-east-1' }] } }),
      policy([]),
    );
    // A caller that passed no policy at all gets the strictest one.
    expect(() =>
      checkStoreEndpoints(namespaced({ awsKms: { region: 'eu-west-1', endpoint: VPCE } }), undefined),
    ).to.throw(StorePolicyError);
  });

  it('ClusterSecretStores are the admin’s own and are not limited', () => {
    checkStoreEndpoints(cluster({ awsKms: { region: 'eu-west-1', endpoint: 'http://anything:1' } }), policy([]));
  });

  it('printable endpoints drop user info', () => {
    expect(printableEndpoint('https://u:p@host:1/path')).to.equal('https://host:1/path');
    expect(printableEndpoint('garbage u:p@x')).to.not.contain('u:p');
  });
});

describe('store policy: local paths', () => {
  let root: string;
  let outside: string;

  beforeEach(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'secretsync-root-')));
    outside = await realpath(await mkdtemp(join(tmpdir(), 'secretsync-outside-')));
    await mkdir(join(root, 'team-a'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  const local = (path: string) => namespaced({ local: { path, masterKeySecretRef: { name: 'k' } } });

  it('a path inside the namespace’s directory of the root is opened at its real path', async () => {
    expect(await allowedLocalPath(local(join(root, 'team-a')), join(root, 'team-a'), policy([], root))).to.equal(
      join(root, 'team-a'),
    );
    await mkdir(join(root, 'team-a', 'app'));
    expect(await allowedLocalPath(local(join(root, 'team-a', 'app')), join(root, 'team-a', 'app'), policy([], root))).to.equal(
      join(root, 'team-a', 'app'),
    );
    // Not there yet (a volume that did not mount): resolved through its parent, still inside.
    expect(
      await allowedLocalPath(local(join(root, 'team-a', 'later')), join(root, 'team-a', 'later', 'x'), policy([], root)),
    ).to.equal(join(root, 'team-a', 'later', 'x'));
  });

  it('refuses the root itself, another namespace’s directory, .., a symbolic link out, and any path without a root', async () => {
    await mkdir(join(root, 'team-b'));
    await symlink(outside, join(root, 'team-a', 'escape'));
    await symlink(join(root, 'team-b'), join(root, 'team-a', 'next-door'));
    const cases: [string, StorePolicy, RegExp][] = [
      [join(root, '..', 'etc'), policy([], root), /outside/],
      [`${root}-sibling`, policy([], root), /outside/],
      [root, policy([], root), /namespace’s directory|namespace's directory/],
      [join(root, 'team-b'), policy([], root), /outside .*team-a/],
      [join(root, 'team-a-b'), policy([], root), /outside/],
      [join(root, 'team-a', '..', 'team-b'), policy([], root), /outside/],
      [join(root, 'team-a', 'escape'), policy([], root), /symbolic link/],
      [join(root, 'team-a', 'escape', 'not-yet'), policy([], root), /symbolic link/],
      [join(root, 'team-a', 'next-door'), policy([], root), /symbolic link/],
      [join(root, 'team-a'), policy([]), /--local-store-root/],
    ];
    for (const [path, p, why] of cases) {
      const err = await rejectionOf(allowedLocalPath(local(path), path, p));
      expect(err, path).to.be.instanceOf(StorePolicyError);
      expect((err as StorePolicyError).reason).to.equal(PolicyReasons.PathNotAllowed);
      expect(err.message).to.match(why).and.contain(path);
    }
  });

  it('a ClusterSecretStore’s path is taken as written', async () => {
    const store = cluster({ local: { path: outside, masterKeySecretRef: { name: 'k', namespace: 'ops' } } });
    expect(await allowedLocalPath(store, outside, policy([]))).to.equal(outside);
  });
});

describe('store policy: every provider checks it before connecting', () => {
  const ctx = (p: StorePolicy): ProviderContext => ({
    storeNamespace: 'team-a',
    allowOperatorIdentityForNamespacedStores: false,
    policy: p,
    observe: (_op, call) => call(),
    requestServiceAccountToken: async () => 'token',
    readSecretKey: async () => randomBytes(32),
  });
  const auth = {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws', key: 'id' },
      secretAccessKeySecretRef: { name: 'aws', key: 'secret' },
    },
  };

  const refused: [string, ProviderSpec, string][] = [
    ['awsSecretsManager', { awsSecretsManager: { region: 'eu-west-1', endpoint: 'http://evil:1', auth } }, '.endpoint'],
    [
      'awsParameterStore',
      { awsParameterStore: { region: 'eu-west-1', auth, failover: [{ endpoint: 'http://evil:1' }] } },
      'failover[0].endpoint',
    ],
    ['awsKms', { awsKms: { region: 'eu-west-1', endpoint: 'http://evil:1', auth } }, '.endpoint'],
    [
      'awsSecretsManager',
      { awsSecretsManager: { region: 'eu-west-1', auth, decrypt: { kms: { endpoint: 'http://evil:1' } } } },
      'decrypt.kms.endpoint',
    ],
    [
      'local',
      {
        local: {
          path: tmpdir(),
          masterKeySecretRef: { name: 'k' },
          decrypt: { kms: { region: 'eu-west-1', endpoint: 'http://evil:1', auth } },
        },
      },
      'local.decrypt.kms.endpoint',
    ],
  ];
  for (const [name, spec, field] of refused) {
    it(`${name}: connect refuses ${field} outside the list, and validateStore says the same without connecting`, async () => {
      const provider = providers.get(name);
      if (!provider) throw new Error(`no provider ${name}`);
      const p = policy(['http://allowed:1'], tmpdir());
      for (const attempt of [
        () => provider.connect(namespaced(spec), ctx(p)),
        () => provider.validateStore(namespaced(spec), p),
      ]) {
        const err = await rejectionOf(attempt());
        expect(err).to.be.instanceOf(StorePolicyError);
        expect((err as StorePolicyError).reason).to.equal('EndpointNotAllowed');
        expect(err.message).to.contain(field).and.contain('http://evil:1');
      }
    });
  }

  it('an allowed endpoint connects (nothing is sent until the first call)', async () => {
    const client = await providers
      .get('awsSecretsManager')
      ?.connect(
        namespaced({ awsSecretsManager: { region: 'eu-west-1', endpoint: 'http://allowed:1', auth } }),
        ctx(policy(['http://allowed:1'])),
      );
    expect(client).to.not.equal(undefined);
    await client?.close();
  });

  it('local: a path outside the root is refused at connect', async () => {
    const root = await mkdtemp(join(tmpdir(), 'secretsync-root-'));
    try {
      const err = await rejectionOf(
        providers
          .get('local')
          ?.connect(
            namespaced({ local: { path: '/etc', masterKeySecretRef: { name: 'k' } } }),
            ctx(policy([], root)),
          ) ?? Promise.resolve(),
      );
      expect(err).to.be.instanceOf(StorePolicyError);
      expect((err as StorePolicyError).reason).to.equal('PathNotAllowed');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
