import { expect } from 'chai';
import type { ManagedSecret, RotationSpec } from '../../../src/api/types.js';
import { nextRotationAfter, rotationDecision, validateRotation } from '../../../src/controller/rotation.js';
import { podSpecReferencesSecret, selectorString } from '../../../src/controller/rollout.js';
import { pinVersion } from '../../../src/cli/commands/rotate.js';

const rotation: RotationSpec = { interval: '1h', generator: { uuid: {} }, remoteRef: { key: 'db', property: 'pw' } };
const ms = (status: ManagedSecret['status'] = {}, annotations?: Record<string, string>): ManagedSecret => ({
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'ManagedSecret',
  metadata: { name: 'a', namespace: 'n', ...(annotations ? { annotations } : {}) },
  spec: {
    storeRef: { name: 's' },
    data: [
      { secretKey: 'pw', remoteRef: { key: 'db', property: 'pw' } },
      { secretKey: 'user', remoteRef: { key: 'db', property: 'user' } },
      { secretKey: 'other', remoteRef: { key: 'else' } },
    ],
    rotation,
  },
  status,
});

describe('rotation decisions (src/controller/rotation.ts)', () => {
  const now = new Date('2026-03-01T12:00:00Z');

  it('rotates at once the first time, then one interval after the last rotation', () => {
    expect(rotationDecision(ms(), now)).to.include({ due: true, trigger: 'initial' });
    const recent = rotationDecision(ms({ lastRotationTime: '2026-03-01T11:30:00Z' }), now);
    expect(recent.due).to.equal(false);
    expect(recent.next?.toISOString()).to.equal('2026-03-01T12:30:00.000Z');
  });

  it('missed due times collapse into one: due once, and the next one counts from the rotation', () => {
    const d = rotationDecision(ms({ lastRotationTime: '2026-03-01T08:00:00Z' }), now);
    expect(d).to.include({ due: true, trigger: 'schedule' });
    expect(nextRotationAfter(rotation, now).toISOString()).to.equal('2026-03-01T13:00:00.000Z');
  });

  it('an unfinished rotation is resumed before anything else; rotate-now only once per value', () => {
    const inProgress = { dueTime: '2026-03-01T11:00:00Z', requestToken: 't', startedAt: '2026-03-01T11:00:01Z' };
    expect(
      rotationDecision(ms({ rotationInProgress: inProgress }, { 'secretsync.io/rotate-now': 'x' }), now),
    ).to.include({
      trigger: 'resume',
    });
    const fresh = { lastRotationTime: '2026-03-01T11:59:00Z' };
    expect(rotationDecision(ms(fresh, { 'secretsync.io/rotate-now': 'x' }), now)).to.include({ trigger: 'manual' });
    expect(
      rotationDecision(ms({ ...fresh, handledRotateNow: 'x' }, { 'secretsync.io/rotate-now': 'x' }), now).due,
    ).to.equal(false);
  });

  it('a cron schedule in a time zone', () => {
    const spec: RotationSpec = { ...rotation, interval: undefined, schedule: '0 3 * * *', timeZone: 'Europe/Paris' };
    expect(nextRotationAfter(spec, now).toISOString()).to.equal('2026-03-02T02:00:00.000Z');
  });

  it('validateRotation refuses what the schema cannot see', () => {
    expect(() =>
      validateRotation({ ...rotation, interval: undefined, schedule: '0 3 * * *', timeZone: 'Mars/Base' }),
    ).to.throw();
    expect(() => validateRotation({ ...rotation, generator: { ed25519: {} } })).to.throw(/privateKey and publicKey/);
    expect(() => validateRotation({ ...rotation, interval: '500ms' })).to.throw(/at least 1s/);
    expect(() => validateRotation(rotation)).to.not.throw();
  });
});

describe('rollout helpers (src/controller/rollout.ts) and rollback (src/cli/commands/rotate.ts)', () => {
  it('finds references in env, envFrom, volumes and projected volumes, and nothing else', () => {
    const c = (extra: object) => ({ containers: [{ ...extra }] });
    expect(podSpecReferencesSecret(c({ env: [{ valueFrom: { secretKeyRef: { name: 's' } } }] }), 's')).to.equal(true);
    expect(podSpecReferencesSecret({ initContainers: [{ envFrom: [{ secretRef: { name: 's' } }] }] }, 's')).to.equal(
      true,
    );
    expect(podSpecReferencesSecret({ volumes: [{ secret: { secretName: 's' } }] }, 's')).to.equal(true);
    expect(
      podSpecReferencesSecret({ volumes: [{ projected: { sources: [{ secret: { name: 's' } }] } }] }, 's'),
    ).to.equal(true);
    expect(podSpecReferencesSecret({ volumes: [{ secret: { secretName: 'other' } }] }, 's')).to.equal(false);
    expect(podSpecReferencesSecret(undefined, 's')).to.equal(false);
  });

  it('renders label selectors as the API server reads them', () => {
    expect(
      selectorString({
        matchLabels: { app: 'a' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['x', 'y'] },
          { key: 'env', operator: 'NotIn', values: ['dev'] },
          { key: 'k', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
    ).to.equal('app=a,tier in (x,y),env notin (dev),k,!legacy');
  });

  it('rollback pins only the items that read the rotated property, and names the keys that change', () => {
    const { data, changed } = pinVersion(ms(), '3');
    expect(changed).to.deep.equal(['pw']);
    expect(data.map((d) => d.remoteRef?.version)).to.deep.equal(['3', undefined, undefined]);
    const again = pinVersion({ ...ms(), spec: { ...ms().spec, data } }, '3');
    expect(again.changed).to.deep.equal([]);
  });
});
