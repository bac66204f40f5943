import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { kubeConfigFromString, loadKubeConfig, type KubeAuth } from '../../../src/kube/config.js';
import { rejectionOf } from '../helpers/index.js';

const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'main',
    contexts: [
      { name: 'other', context: { cluster: 'other', user: 'other' } },
      { name: 'main', context: { cluster: 'c1', user: 'u1', namespace: 'apps' } },
    ],
    clusters: [
      { name: 'other', cluster: { server: 'https://wrong.example:6443' } },
      { name: 'c1', cluster: { server: 'https://127.0.0.1:6443', ...cluster } },
    ],
    users: [
      { name: 'other', user: { token: 'wrong' } },
      { name: 'u1', user },
    ],
  });

async function applied(auth: KubeAuth): Promise<RequestOptions> {
  const options: RequestOptions = {};
  await auth.applyToHTTPSOptions(options);
  return options;
}

describe('kubeconfig loading', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'secretsync-kubeconfig-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the current context: server, CA data and bearer token', async () => {
    const ca = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const auth = await kubeConfigFromString(
      kubeconfig({ token: 'tok-123' }, { 'certificate-authority-data': ca.toString('base64') }),
    );
    expect(auth.getCurrentCluster()?.server).to.equal('https://127.0.0.1:6443');
    const options = await applied(auth);
    expect(options.ca).to.deep.equal(ca);
    expect(options.rejectUnauthorized).to.equal(true);
    expect((options.headers as Record<string, string>).authorization).to.equal('Bearer tok-123');
  });

  it('reads client certificate files relative to the kubeconfig, and honours insecure-skip-tls-verify', async () => {
    writeFileSync(join(dir, 'client.crt'), 'CERT');
    writeFileSync(join(dir, 'client.key'), 'KEY');
    const path = join(dir, 'config');
    writeFileSync(
      path,
      kubeconfig(
        { 'client-certificate': 'client.crt', 'client-key': 'client.key' },
        { 'insecure-skip-tls-verify': true },
      ),
    );
    const options = await applied(await loadKubeConfig(path));
    expect(options.cert?.toString()).to.equal('CERT');
    expect(options.key?.toString()).to.equal('KEY');
    expect(options.rejectUnauthorized).to.equal(false);
    expect(options.headers).to.equal(undefined);
  });

  it('re-reads a tokenFile each time, so a rotated token is picked up', async () => {
    const tokenPath = join(dir, 'token');
    writeFileSync(tokenPath, 'first\n');
    const auth = await kubeConfigFromString(kubeconfig({ tokenFile: tokenPath }));
    expect((await applied(auth)).headers).to.deep.equal({ authorization: 'Bearer first' });
    writeFileSync(tokenPath, 'second\n');
    expect((await applied(auth)).headers).to.deep.equal({ authorization: 'Bearer second' });
  });

  it('uses the in-cluster ServiceAccount when there is no kubeconfig', async () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), 'CA');
    const auth = await loadKubeConfig(undefined, {
      env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
      home: dir,
      serviceAccountDir: sa,
    });
    expect(auth.getCurrentCluster()?.server).to.equal('https://10.0.0.1:443');
    const options = await applied(auth);
    expect(options.ca?.toString()).to.equal('CA');
    expect(options.headers).to.deep.equal({ authorization: 'Bearer sa-token' });
  });

  it('prefers $KUBECONFIG over ~/.kube/config and the ServiceAccount', async () => {
    const path = join(dir, 'from-env');
    writeFileSync(path, kubeconfig({ token: 'env' }));
    mkdirSync(join(dir, '.kube'));
    writeFileSync(join(dir, '.kube', 'config'), kubeconfig({ token: 'home' }));
    const auth = await loadKubeConfig(undefined, { env: { KUBECONFIG: path }, home: dir });
    expect((await applied(auth)).headers).to.deep.equal({ authorization: 'Bearer env' });
    const home = await loadKubeConfig(undefined, { env: {}, home: dir });
    expect((await applied(home)).headers).to.deep.equal({ authorization: 'Bearer home' });
  });

  it('hands exec plugins to client-node', async function () {
    // Loads client-node (about 75 MiB of modules): slow on a busy machine.
    this.timeout(30_000);
    const auth = await kubeConfigFromString(
      kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } }),
    );
    expect(auth.constructor.name).to.equal('KubeConfig');
    expect(auth.getCurrentCluster()?.server).to.equal('https://127.0.0.1:6443');
  });

  it('fails with a clear message when nothing is configured, or the kubeconfig has no current context', async () => {
    const none = await rejectionOf(loadKubeConfig(undefined, { env: {}, home: dir, serviceAccountDir: dir }));
    expect(none.message).to.equal(
      'no Kubernetes cluster configured (use --kubeconfig, KUBECONFIG, or run in a cluster)',
    );
    const noContext = await rejectionOf(kubeConfigFromString('apiVersion: v1\nkind: Config\n'));
    expect(noContext.message).to.include('no current context');
    const missing = await rejectionOf(loadKubeConfig(join(dir, 'absent')));
    expect(missing.message).to.match(/^cannot read kubeconfig .*absent/);
  });
});
