// The rule for Secrets External Secrets Operator wrote: compared, never
// written, until the ManagedSecret is annotated to take them over; then one
// write replaces ESO's owner reference and bookkeeping with ours.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { API_VERSION, LABEL_MANAGED_BY, type ManagedSecret, type TargetSpec } from '../../../src/api/types.js';
import {
  b64,
  buildDesired,
  LABEL_MANAGED,
  planSecretWrite,
  type SecretObject,
  type SecretPlan,
} from '../../../src/secrets/desired.js';
import { ANNOTATION_ADOPT_FROM_ESO, esoWriterOf } from '../../../src/secrets/eso-adoption.js';

const HMAC_KEY = randomBytes(32);
const VALUES = { username: 'app', password: 'hunter2-correct-horse' };
const ESO_OWNER = {
  apiVersion: 'external-secrets.io/v1',
  kind: 'ExternalSecret',
  name: 'db',
  uid: 'es-uid',
  controller: true,
  blockOwnerDeletion: true,
};

function managedSecret(target?: TargetSpec, adopt = false): ManagedSecret {
  return {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: {
      name: 'db',
      namespace: 'team-a',
      uid: 'uid-db',
      generation: 1,
      ...(adopt ? { annotations: { [ANNOTATION_ADOPT_FROM_ESO]: 'true' } } : {}),
    },
    spec: { storeRef: { name: 'store' }, ...(target ? { target } : {}) },
  };
}

/** A Secret as ESO writes it under creationPolicy Owner. */
function esoSecret(values: Record<string, string> = VALUES, extra: Partial<SecretObject> = {}): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'db',
      namespace: 'team-a',
      resourceVersion: '42',
      uid: 'secret-uid',
      labels: {
        'reconcile.external-secrets.io/managed': 'true',
        'reconcile.external-secrets.io/created-by': 'abc',
        app: 'web',
      },
      annotations: { 'reconcile.external-secrets.io/data-hash': 'f00', team: 'payments' },
      ownerReferences: [ESO_OWNER],
    },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, b64(v)])),
    ...extra,
  };
}

function plan(ms: ManagedSecret, existing: SecretObject, values = VALUES): SecretPlan {
  return planSecretWrite(ms, buildDesired(ms, values, HMAC_KEY), existing, HMAC_KEY);
}

describe('taking over Secrets ESO wrote', () => {
  it('recognises ESO by its owner reference, or by its managed label when it wrote without an owner', () => {
    expect(esoWriterOf(esoSecret().metadata)).to.equal('ExternalSecret db');
    expect(esoWriterOf({ labels: { 'reconcile.external-secrets.io/managed': 'true' } })).to.equal(
      'External Secrets Operator',
    );
    expect(esoWriterOf({ labels: { app: 'web' } })).to.equal(undefined);
    // ESO merged into a Secret another controller owns: not ESO's.
    const certManager = {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      name: 'tls',
      uid: 'c',
      controller: true,
    };
    expect(
      esoWriterOf({ labels: { 'reconcile.external-secrets.io/managed': 'true' }, ownerReferences: [certManager] }),
    ).to.equal(undefined);
    expect(esoWriterOf({ ownerReferences: [{ ...ESO_OWNER, apiVersion: 'example.com/v1' }] })).to.equal(undefined);
  });

  for (const creationPolicy of ['Owner', 'Orphan'] as const) {
    it(`makes no write to an equal ESO Secret without the annotation (creationPolicy ${creationPolicy}), and says so`, () => {
      const p = plan(managedSecret({ creationPolicy }), esoSecret());
      expect(p.action).to.equal('none');
      const note = p.action === 'none' ? (p.note ?? '') : '';
      expect(note).to.include('written by ExternalSecret db').and.include(ANNOTATION_ADOPT_FROM_ESO);
      expect(note).not.to.include('hunter2');
    });
  }

  it('allows keys only ESO writes, naming how many stay', () => {
    const existing = esoSecret({ ...VALUES, extra: 'from-a-template' });
    const p = plan(managedSecret(), existing);
    expect(p.action).to.equal('none');
    expect(p.action === 'none' ? p.note : '').to.include('1 keys of it');
  });

  it('refuses to write a different ESO Secret without the annotation, naming the keys and never the values', () => {
    const p = plan(managedSecret(), esoSecret({ ...VALUES, password: 'old' }));
    expect(p).to.include({ action: 'conflict', reason: 'SecretConflict' });
    const message = p.action === 'conflict' ? p.message : '';
    expect(message).to.include('keys password differ').and.include(ANNOTATION_ADOPT_FROM_ESO);
    expect(message).not.to.include('hunter2').and.not.include('old)');
    const typed = plan(managedSecret({ type: 'kubernetes.io/basic-auth' }), esoSecret());
    expect(typed.action === 'conflict' ? typed.message : '').to.include('its type is Opaque');
  });

  it('takes over with the annotation: one update, ESO owner and bookkeeping replaced by ours, data unchanged', () => {
    const existing = esoSecret();
    const p = plan(managedSecret(undefined, true), existing);
    if (p.action !== 'update') throw new Error(`expected update, got ${p.action}`);
    const meta = p.body.metadata;
    expect(meta.resourceVersion).to.equal('42');
    expect(p.body.data).to.deep.equal(existing.data);
    expect(meta.ownerReferences).to.deep.equal([
      {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        name: 'db',
        uid: 'uid-db',
        controller: true,
        blockOwnerDeletion: false,
      },
    ]);
    expect(meta.labels).to.include({ app: 'web', [LABEL_MANAGED]: 'true', [LABEL_MANAGED_BY]: 'secretsync' });
    expect(Object.keys(meta.labels ?? {}).filter((k) => k.includes('external-secrets'))).to.deep.equal([]);
    expect(meta.annotations).to.include({ team: 'payments' });
    expect(meta.annotations).not.to.have.property('reconcile.external-secrets.io/data-hash');
    // Once taken over, the Secret is ours: the next pass writes nothing.
    const after = { ...p.body, metadata: { ...meta, resourceVersion: '43' } };
    expect(plan(managedSecret(undefined, true), after)).to.deep.equal({ action: 'none' });
    expect(plan(managedSecret(), after)).to.deep.equal({ action: 'none' });
  });

  it('takes over under Orphan without an owner reference, keeping owners that are not ESO', () => {
    const other = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'd-uid' };
    const p = plan(managedSecret({ creationPolicy: 'Orphan' }, true), esoSecret(VALUES, {}));
    if (p.action !== 'update') throw new Error(`expected update, got ${p.action}`);
    expect(p.body.metadata.ownerReferences).to.equal(undefined);
    const existing = esoSecret();
    existing.metadata.ownerReferences = [ESO_OWNER, other];
    const q = plan(managedSecret({ creationPolicy: 'Orphan' }, true), existing);
    expect(q.action === 'update' ? q.body.metadata.ownerReferences : undefined).to.deep.equal([other]);
  });

  it('takes over an immutable Secret with the same values in place (its metadata may change, its data not)', () => {
    const existing = esoSecret(VALUES, { immutable: true });
    const p = plan(managedSecret({ immutable: true }, true), existing);
    if (p.action !== 'update') throw new Error(`expected update, got ${p.action}`);
    expect(p.body.immutable).to.equal(true);
    expect(p.body.data).to.deep.equal(existing.data);
    expect(
      plan(managedSecret({ immutable: true }, true), esoSecret({ ...VALUES, password: 'new' }, { immutable: true }))
        .action,
    ).to.equal('recreate');
  });

  it('still refuses a Secret nobody wrote, annotation or not', () => {
    const plain = esoSecret();
    plain.metadata.labels = { app: 'web' };
    plain.metadata.ownerReferences = [];
    expect(plan(managedSecret(undefined, true), plain)).to.include({ action: 'conflict', reason: 'SecretConflict' });
  });
});
