import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { unsafeKubeconfigParts } from '../../../src/replication/replicator.js';

const kubeconfig = (user: object, cluster: object = { 'certificate-authority-data': 'Q0E=' }) => {
  const kc = new KubeConfig();
  kc.loadFromString(
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'dr', cluster: { server: 'https://dr.example:6443', ...cluster } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'dr', context: { cluster: 'dr', user: 'u' } }],
      'current-context': 'dr',
    }),
  );
  return kc;
};

describe('replication kubeconfigs', () => {
  it('accepts embedded tokens and client certificates', () => {
    expect(unsafeKubeconfigParts(kubeconfig({ token: 't' }))).to.deep.equal([]);
    expect(
      unsafeKubeconfigParts(kubeconfig({ 'client-certificate-data': 'Qw==', 'client-key-data': 'Sw==' })),
    ).to.deep.equal([]);
  });

  it('refuses exec and auth-provider plugins and file references (the operator would run or read them)', () => {
    expect(
      unsafeKubeconfigParts(kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' } })),
    ).to.deep.equal(['an exec credential plugin']);
    expect(unsafeKubeconfigParts(kubeconfig({ 'auth-provider': { name: 'oidc', config: {} } }))).to.deep.equal([
      'an auth-provider',
    ]);
    expect(
      unsafeKubeconfigParts(kubeconfig({ 'client-certificate': '/etc/x.crt', 'client-key': '/etc/x.key' })),
    ).to.deep.equal(['client certificate files']);
    expect(
      unsafeKubeconfigParts(kubeconfig({ token: 't' }, { 'certificate-authority': '/var/run/ca.crt' })),
    ).to.deep.equal(['a CA file']);
  });
});
