import { expect } from 'chai';
import { stringify } from 'yaml';
import { KubeconfigError, kubeConfigFromString } from '../../../src/kube/config.js';
import { rejectionOf } from '../helpers/index.js';

const kubeconfig = (user: object, cluster: object = { 'certificate-authority-data': 'Q0E=' }) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'dr', cluster: { server: 'https://dr.example:6443', ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'dr', context: { cluster: 'dr', user: 'u' } }],
    'current-context': 'dr',
  });

/** What a replication kubeconfig (from a Secret) is refused for; [] when it is accepted. */
async function refusedParts(user: object, cluster?: object): Promise<string[]> {
  try {
    await kubeConfigFromString(kubeconfig(user, cluster), { embeddedOnly: true });
    return [];
  } catch (err) {
    expect(err).to.be.instanceOf(KubeconfigError);
    expect((err as KubeconfigError).problem).to.equal('unsafe');
    return (err as KubeconfigError).parts;
  }
}

describe('replication kubeconfigs', () => {
  it('accepts embedded tokens and client certificates', async () => {
    expect(await refusedParts({ token: 't' })).to.deep.equal([]);
    expect(await refusedParts({ 'client-certificate-data': 'Qw==', 'client-key-data': 'Sw==' })).to.deep.equal([]);
  });

  it('refuses exec and auth-provider plugins and file references (the operator would run or read them)', async () => {
    expect(
      await refusedParts({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } }),
    ).to.deep.equal(['an exec credential plugin']);
    expect(await refusedParts({ 'auth-provider': { name: 'oidc', config: {} } })).to.deep.equal(['an auth-provider']);
    expect(await refusedParts({ 'client-certificate': '/etc/x.crt', 'client-key': '/etc/x.key' })).to.deep.equal([
      'client certificate files',
    ]);
    expect(await refusedParts({ tokenFile: '/var/run/token' })).to.deep.equal(['a token file']);
    expect(await refusedParts({ token: 't' }, { 'certificate-authority': '/var/run/ca.crt' })).to.deep.equal([
      'a CA file',
    ]);
    expect(await refusedParts({ username: 'u', password: 'p' })).to.deep.equal(['username', 'password']);
    // A proxy is refused (client-node would be needed) and named, also when no user key is.
    expect(await refusedParts({ token: 't' }, { 'proxy-url': 'http://proxy.example:3128' })).to.deep.equal([
      'a proxy-url',
    ]);
  });

  it('says what is wrong without quoting the document', async () => {
    const notYaml = await rejectionOf(kubeConfigFromString('token: "s3cr3t\n  : [', { embeddedOnly: true }));
    expect((notYaml as KubeconfigError).problem).to.equal('invalid');
    expect(notYaml.message).to.not.include('s3cr3t');
    const noCluster = await rejectionOf(kubeConfigFromString('apiVersion: v1\nkind: Config\n'));
    expect((noCluster as KubeconfigError).problem).to.equal('no-cluster');
  });
});
