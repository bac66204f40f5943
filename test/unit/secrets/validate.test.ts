import { expect } from 'chai';
import { SpecError } from '../../../src/api/errors.js';
import { API_VERSION, type ManagedSecret, type TargetSpec } from '../../../src/api/types.js';
import {
  ALLOWED_KUBERNETES_SECRET_TYPES,
  metadataKeyRefusal,
  secretTypeRefusal,
  validateTarget,
} from '../../../src/secrets/validate.js';

const ms = (target?: TargetSpec): ManagedSecret => ({
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name: 'db', namespace: 'team-a' },
  spec: {
    storeRef: { name: 'store' },
    data: [{ secretKey: 'a', remoteRef: { key: 'a' } }],
    ...(target ? { target } : {}),
  },
});

function specErrorOf(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpecError) return err;
    throw new Error(`expected a SpecError, got ${String(err)}`);
  }
  throw new Error('expected a SpecError, but none was thrown');
}

describe('validateTarget', () => {
  it('accepts Opaque, the shape-only kubernetes.io types and custom types', () => {
    for (const type of ['Opaque', '', ...ALLOWED_KUBERNETES_SECRET_TYPES, 'example.com/token', 'custom', 'helm.sh/x'])
      expect(secretTypeRefusal(type), type).to.equal(undefined);
    validateTarget(ms());
    validateTarget(ms({ type: 'kubernetes.io/tls' }));
  });

  for (const type of [
    'kubernetes.io/service-account-token',
    'bootstrap.kubernetes.io/token',
    'kubernetes.io/anything-new',
    'Kubernetes.IO/service-account-token',
    'k8s.io/x',
    'sub.k8s.io/x',
  ])
    it(`refuses target.type ${type} (InvalidSpec, terminal)`, () => {
      const err = specErrorOf(() => validateTarget(ms({ type })));
      expect(err.reason).to.equal('InvalidSpec');
      expect(err.retry).to.equal('terminal');
      expect(err.message).to.include(`target.type: Secret type "${type}" is refused`);
    });

  it('accepts ordinary and app.kubernetes.io/ labels and annotations', () => {
    validateTarget(
      ms({
        labels: { team: 'a', 'app.kubernetes.io/name': 'db', 'example.com/tier': 'x' },
        annotations: { 'reloader.stakater.com/match': 'true', 'app.kubernetes.io/part-of': 'shop' },
      }),
    );
    // A domain that merely looks alike is not kubernetes.io.
    expect(metadataKeyRefusal('notkubernetes.io/x')).to.equal(undefined);
    expect(metadataKeyRefusal('kubernetes.io')).to.equal(undefined);
  });

  for (const [field, key, why] of [
    ['annotations', 'kubernetes.io/service-account.name', 'kubernetes.io/ and k8s.io/'],
    ['annotations', 'kubernetes.io/service-account.uid', 'kubernetes.io/ and k8s.io/'],
    ['annotations', 'kubectl.kubernetes.io/last-applied-configuration', 'kubernetes.io/ and k8s.io/'],
    ['labels', 'node-role.kubernetes.io/control-plane', 'kubernetes.io/ and k8s.io/'],
    ['labels', 'k8s.io/x', 'kubernetes.io/ and k8s.io/'],
    ['annotations', 'secretsync.io/managed-secret', "secretsync's own bookkeeping"],
    ['annotations', 'secretsync.io/merge-from', "secretsync's own bookkeeping"],
    ['labels', 'secretsync.io/managed', "secretsync's own bookkeeping"],
    ['labels', 'x.secretsync.io/y', "secretsync's own bookkeeping"],
  ] as const)
    it(`refuses target.${field} key ${key}`, () => {
      const err = specErrorOf(() => validateTarget(ms({ [field]: { fine: 'x', [key]: 'value-not-shown' } })));
      expect(err.message).to.include(`target.${field}: "${key}" is refused`);
      expect(err.message).to.include(why);
      expect(err.message).to.not.include('value-not-shown');
    });

  it('names the same key whatever the map order', () => {
    const a = specErrorOf(() => validateTarget(ms({ labels: { 'k8s.io/b': '', 'k8s.io/a': '' } })));
    const b = specErrorOf(() => validateTarget(ms({ labels: { 'k8s.io/a': '', 'k8s.io/b': '' } })));
    expect(a.message).to.equal(b.message);
  });
});
