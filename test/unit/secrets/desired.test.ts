import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import {
  ANNOTATION_DATA_HMAC,
  ANNOTATION_MANAGED_KEYS,
  ANNOTATION_MANAGED_SECRET,
  ANNOTATION_MERGE_FROM,
  API_VERSION,
  LABEL_MANAGED_BY,
  type ManagedSecret,
  type TargetSpec,
} from '../../../src/api/types.js';
import {
  LABEL_MANAGED,
  b64,
  buildDesired,
  managedKeysOf,
  managedSecretOf,
  observedDataHmac,
  planSecretWrite,
  targetName,
  type SecretObject,
  type SecretPlan,
} from '../../../src/secrets/desired.js';
import { dataHmac } from '../../../src/secrets/hmac.js';
import { LABEL_SHARD } from '../../../src/sharding/ownership.js';

const HMAC_KEY = randomBytes(32);
const VALUES = { username: 'app', password: 'hunter2-correct-horse' };

function managedSecret(target?: TargetSpec, name = 'db'): ManagedSecret {
  return {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: { name, namespace: 'team-a', uid: `uid-${name}`, generation: 1 },
    spec: { storeRef: { name: 'store' }, ...(target ? { target } : {}) },
  };
}

/** The plan for `values` against `existing`, for a ManagedSecret with `target`. */
function plan(
  target: TargetSpec | undefined,
  existing: SecretObject | undefined,
  values: Record<string, string> = VALUES,
  name = 'db',
): SecretPlan {
  const ms = managedSecret(target, name);
  return planSecretWrite(ms, buildDesired(ms, values, HMAC_KEY), existing, HMAC_KEY);
}

/** The body of a plan that must be a write of the given kind. */
function bodyOf(p: SecretPlan, action: 'create' | 'update' | 'recreate'): SecretObject {
  expect(p.action).to.equal(action);
  if (p.action !== action || !('body' in p)) throw new Error(`expected ${action}, got ${p.action}`);
  return p.body;
}

function messageOf(p: SecretPlan, action: 'conflict' | 'missing'): string {
  expect(p.action).to.equal(action);
  if (p.action !== action || !('message' in p)) throw new Error(`expected ${action}, got ${p.action}`);
  return p.message;
}

/** What the API server would hold after the write: the body with a resourceVersion and uid. */
function stored(body: SecretObject, resourceVersion = '100'): SecretObject {
  const copy = structuredClone(body);
  return { ...copy, metadata: { ...copy.metadata, resourceVersion, uid: 'secret-uid' } };
}

/** A Secret we created earlier for the default ManagedSecret, as the server holds it. */
function ours(target?: TargetSpec, values: Record<string, string> = VALUES): SecretObject {
  return stored(bodyOf(plan(target, undefined, values), 'create'));
}

/** A Secret someone else made, for creationPolicy Merge, consenting to merges from ManagedSecret `consent` (null: no consent). */
function foreignSecret(extra: Partial<SecretObject> = {}, consent: string | null = 'db'): SecretObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'db',
      namespace: 'team-a',
      resourceVersion: '7',
      labels: { app: 'web' },
      annotations: { owner: 'platform-team', ...(consent !== null ? { [ANNOTATION_MERGE_FROM]: consent } : {}) },
    },
    type: 'Opaque',
    data: { 'other-key': b64('not ours') },
    ...extra,
  };
}

describe('desired', () => {
  describe('buildDesired', () => {
    it('base64-encodes the values and records their keyed HMAC', () => {
      const ms = managedSecret();
      const desired = buildDesired(ms, VALUES, HMAC_KEY);
      expect(desired.data).to.deep.equal({ username: b64('app'), password: b64('hunter2-correct-horse') });
      expect(desired.type).to.equal('Opaque');
      expect(desired.hmac).to.equal(dataHmac(HMAC_KEY, 'Opaque', desired.data));
      expect(desired.annotations[ANNOTATION_DATA_HMAC]).to.equal(desired.hmac);
      expect(desired.annotations[ANNOTATION_MANAGED_KEYS]).to.equal('password,username');
      expect(desired.annotations[ANNOTATION_MANAGED_SECRET]).to.equal('db');
      expect(desired.labels).to.deep.equal({ [LABEL_MANAGED]: 'true', [LABEL_MANAGED_BY]: 'secretsync' });
    });

    it("labels the Secret with the ManagedSecret's shard in sharded mode only, over a shard label in target.labels", () => {
      const ms = managedSecret({ labels: { [LABEL_SHARD]: '9', team: 'a' } });
      expect(buildDesired(ms, VALUES, HMAC_KEY, 5).labels[LABEL_SHARD]).to.equal('5');
      expect(buildDesired(ms, VALUES, HMAC_KEY, 0).labels[LABEL_SHARD]).to.equal('0');
      expect(buildDesired(managedSecret(), VALUES, HMAC_KEY).labels).not.to.have.property(LABEL_SHARD);
      const merged = buildDesired(managedSecret({ creationPolicy: 'Merge' }), VALUES, HMAC_KEY, 2);
      expect(merged.labels[LABEL_SHARD]).to.equal('2');
    });

    it('adopts a Secret written before sharding: an update that adds the shard label and keeps the rest', () => {
      const ms = managedSecret();
      const unsharded = bodyOf(planSecretWrite(ms, buildDesired(ms, VALUES, HMAC_KEY), undefined, HMAC_KEY), 'create');
      const existing: SecretObject = {
        ...unsharded,
        metadata: {
          ...unsharded.metadata,
          uid: 'u1',
          resourceVersion: '7',
          labels: { ...unsharded.metadata.labels, keep: 'me' },
        },
      };
      expect(planSecretWrite(ms, buildDesired(ms, VALUES, HMAC_KEY), existing, HMAC_KEY).action).to.equal('none');
      const body = bodyOf(planSecretWrite(ms, buildDesired(ms, VALUES, HMAC_KEY, 3), existing, HMAC_KEY), 'update');
      expect(body.metadata.labels).to.include({ [LABEL_SHARD]: '3', keep: 'me', [LABEL_MANAGED]: 'true' });
      expect(body.metadata.resourceVersion).to.equal('7');
      expect(body.data).to.deep.equal(existing.data);
    });

    it('uses target.name, target.type and the ManagedSecret namespace', () => {
      const ms = managedSecret({ name: 'db-credentials', type: 'kubernetes.io/basic-auth' });
      const desired = buildDesired(ms, VALUES, HMAC_KEY);
      expect(targetName(ms)).to.equal('db-credentials');
      expect(desired.name).to.equal('db-credentials');
      expect(desired.namespace).to.equal('team-a');
      expect(desired.type).to.equal('kubernetes.io/basic-auth');
      expect(desired.hmac).to.equal(dataHmac(HMAC_KEY, 'kubernetes.io/basic-auth', desired.data));
      expect(targetName(managedSecret())).to.equal('db');
    });

    it('never copies GitOps tracking labels or annotations from the target', () => {
      const desired = buildDesired(
        managedSecret({
          labels: {
            'app.kubernetes.io/instance': 'my-app',
            'argocd.argoproj.io/instance': 'my-app',
            'app.kubernetes.io/name': 'db',
            team: 'a',
          },
          annotations: {
            'argocd.argoproj.io/tracking-id': 'my-app:secretsync.io/ManagedSecret:team-a/db',
            'argocd.argoproj.io/sync-options': 'Prune=false',
            'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{}}',
            'reloader.stakater.com/match': 'true',
          },
        }),
        VALUES,
        HMAC_KEY,
      );
      expect(desired.labels).to.deep.equal({
        'app.kubernetes.io/name': 'db',
        team: 'a',
        [LABEL_MANAGED]: 'true',
        [LABEL_MANAGED_BY]: 'secretsync',
      });
      expect(Object.keys(desired.annotations).sort()).to.deep.equal(
        [
          ANNOTATION_DATA_HMAC,
          ANNOTATION_MANAGED_KEYS,
          ANNOTATION_MANAGED_SECRET,
          'reloader.stakater.com/match',
        ].sort(),
      );
    });

    it('does not let target labels or annotations override ours', () => {
      const desired = buildDesired(
        managedSecret({
          labels: { [LABEL_MANAGED]: 'false', [LABEL_MANAGED_BY]: 'helm' },
          annotations: { [ANNOTATION_MANAGED_SECRET]: 'someone-else', [ANNOTATION_DATA_HMAC]: 'forged' },
        }),
        VALUES,
        HMAC_KEY,
      );
      expect(desired.labels[LABEL_MANAGED]).to.equal('true');
      expect(desired.labels[LABEL_MANAGED_BY]).to.equal('secretsync');
      expect(desired.annotations[ANNOTATION_MANAGED_SECRET]).to.equal('db');
      expect(desired.annotations[ANNOTATION_DATA_HMAC]).to.equal(desired.hmac);
    });

    it('has an ownerReference only for creationPolicy Owner', () => {
      expect(buildDesired(managedSecret(), VALUES, HMAC_KEY).ownerReference).to.deep.equal({
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        name: 'db',
        uid: 'uid-db',
        controller: true,
        blockOwnerDeletion: false,
      });
      for (const creationPolicy of ['Orphan', 'Merge', 'None'] as const)
        expect(buildDesired(managedSecret({ creationPolicy }), VALUES, HMAC_KEY).ownerReference).to.equal(undefined);
    });

    it('does not claim a merged-into Secret with the managed-by label', () => {
      const desired = buildDesired(managedSecret({ creationPolicy: 'Merge' }), VALUES, HMAC_KEY);
      expect(desired.labels).to.deep.equal({ [LABEL_MANAGED]: 'true' });
    });
  });

  describe('managedKeysOf and managedSecretOf', () => {
    it('read our annotations', () => {
      const secret = foreignSecret();
      secret.metadata.annotations = { [ANNOTATION_MANAGED_KEYS]: 'a,b,', [ANNOTATION_MANAGED_SECRET]: 'db' };
      expect(managedKeysOf(secret)).to.deep.equal(['a', 'b']);
      expect(managedSecretOf(secret)).to.equal('db');
      expect(managedKeysOf(undefined)).to.deep.equal([]);
      expect(managedKeysOf(foreignSecret())).to.deep.equal([]);
      expect(managedSecretOf(foreignSecret())).to.equal(undefined);
    });
  });

  describe('planSecretWrite, creationPolicy Owner', () => {
    it('creates the Secret when absent, owned by the ManagedSecret', () => {
      const body = bodyOf(plan(undefined, undefined), 'create');
      const desired = buildDesired(managedSecret(), VALUES, HMAC_KEY);
      expect(body).to.deep.equal({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'db',
          namespace: 'team-a',
          labels: desired.labels,
          annotations: desired.annotations,
          ownerReferences: [desired.ownerReference],
        },
        type: 'Opaque',
        data: desired.data,
      });
    });

    it('creates an immutable Secret when the target says so', () => {
      expect(bodyOf(plan({ immutable: true }, undefined), 'create').immutable).to.equal(true);
    });

    it('does nothing when the Secret is as desired', () => {
      expect(plan(undefined, ours())).to.deep.equal({ action: 'none' });
      expect(plan({ immutable: true }, ours({ immutable: true }))).to.deep.equal({ action: 'none' });
      expect(plan({ type: 'kubernetes.io/basic-auth' }, ours({ type: 'kubernetes.io/basic-auth' }))).to.deep.equal({
        action: 'none',
      });
    });

    it('does nothing when others added labels, annotations or owners', () => {
      const existing = ours();
      existing.metadata.labels = { ...existing.metadata.labels, extra: 'x' };
      existing.metadata.annotations = { ...existing.metadata.annotations, 'reloader/last': 'y' };
      existing.metadata.ownerReferences = [
        ...(existing.metadata.ownerReferences ?? []),
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'c', uid: 'cm-uid' },
      ];
      expect(plan(undefined, existing)).to.deep.equal({ action: 'none' });
    });

    it('updates when the values changed in the store', () => {
      const body = bodyOf(plan(undefined, ours(), { ...VALUES, password: 'rotated' }), 'update');
      expect(body.data).to.deep.equal({ username: b64('app'), password: b64('rotated') });
      expect(body.metadata.resourceVersion).to.equal('100');
      expect(body.metadata.annotations?.[ANNOTATION_DATA_HMAC]).to.equal(
        dataHmac(HMAC_KEY, 'Opaque', { username: b64('app'), password: b64('rotated') }),
      );
    });

    it('updates when a value was edited by hand, even with the HMAC annotation left intact', () => {
      const existing = ours();
      existing.data = { ...existing.data, password: b64('edited-by-hand') };
      const body = bodyOf(plan(undefined, existing), 'update');
      expect(body.data).to.deep.equal(buildDesired(managedSecret(), VALUES, HMAC_KEY).data);
      expect(body.metadata.resourceVersion).to.equal('100');
    });

    it('updates when one of our keys was removed by hand', () => {
      const removed = ours();
      removed.data = { username: b64('app') };
      expect(bodyOf(plan(undefined, removed), 'update').data).to.have.property('password', b64(VALUES.password));
    });

    it('does nothing when others added a data key, and keeps it when it writes for another reason', () => {
      // Were an added key drift to repair, a controller that adds a key to our Secret and we would write forever.
      const added = ours();
      added.data = { ...added.data, 'added-by-others': b64('x') };
      expect(plan(undefined, added)).to.deep.equal({ action: 'none' });
      const body = bodyOf(plan(undefined, added, { ...VALUES, password: 'rotated' }), 'update');
      expect(body.data).to.deep.equal({
        username: b64('app'),
        password: b64('rotated'),
        'added-by-others': b64('x'),
      });
      expect(body.metadata.annotations?.[ANNOTATION_MANAGED_KEYS]).to.equal('password,username');
    });

    it('removes a key it wrote before and no longer wants, and then is stable', () => {
      const body = bodyOf(plan(undefined, ours(), { password: VALUES.password }), 'update');
      expect(body.data).to.deep.equal({ password: b64(VALUES.password) });
      expect(plan(undefined, stored(body, '101'), { password: VALUES.password })).to.deep.equal({ action: 'none' });
    });

    it('updates when our label or annotation was removed', () => {
      const noLabel = ours();
      noLabel.metadata.labels = {};
      expect(bodyOf(plan(undefined, noLabel), 'update').metadata.labels).to.include({ [LABEL_MANAGED]: 'true' });

      const noHmac = ours();
      noHmac.metadata.annotations = { [ANNOTATION_MANAGED_SECRET]: 'db' };
      expect(bodyOf(plan(undefined, noHmac), 'update').metadata.annotations).to.have.property(ANNOTATION_DATA_HMAC);
    });

    it('updates to (re)claim ownership when the ownerReference is missing or names an older ManagedSecret', () => {
      const orphaned = ours();
      delete orphaned.metadata.ownerReferences;
      const desiredRef = buildDesired(managedSecret(), VALUES, HMAC_KEY).ownerReference;
      expect(bodyOf(plan(undefined, orphaned), 'update').metadata.ownerReferences).to.deep.equal([desiredRef]);

      const stale = ours();
      stale.metadata.ownerReferences = [{ ...(desiredRef as NonNullable<typeof desiredRef>), uid: 'old-uid' }];
      expect(bodyOf(plan(undefined, stale), 'update').metadata.ownerReferences).to.deep.equal([desiredRef]);
    });

    it('updates when our ownerReference is there but not as the controller', () => {
      const existing = ours();
      existing.metadata.ownerReferences = (existing.metadata.ownerReferences ?? []).map((r) => ({
        ...r,
        controller: false,
      }));
      const body = bodyOf(plan(undefined, existing), 'update');
      expect(body.metadata.ownerReferences?.[0]?.controller).to.equal(true);
    });

    it('keeps labels and annotations others added when it updates', () => {
      const existing = ours();
      existing.metadata.labels = { ...existing.metadata.labels, 'team.example.com/owner': 'a' };
      existing.metadata.annotations = { ...existing.metadata.annotations, 'reloader.stakater.com/last': 'abc' };
      const body = bodyOf(plan(undefined, existing, { ...VALUES, password: 'rotated' }), 'update');
      expect(body.metadata.labels).to.include({ 'team.example.com/owner': 'a', [LABEL_MANAGED]: 'true' });
      expect(body.metadata.annotations).to.include({ 'reloader.stakater.com/last': 'abc' });
      expect(body.metadata.annotations?.[ANNOTATION_DATA_HMAC]).to.not.equal(
        existing.metadata.annotations[ANNOTATION_DATA_HMAC],
      );
    });

    it('keeps finalizers others set when it updates (a PUT without them removes them)', () => {
      const existing = ours();
      existing.metadata.finalizers = ['backup.example.com/protect'];
      const body = bodyOf(plan(undefined, existing, { ...VALUES, password: 'rotated' }), 'update');
      expect(body.metadata.finalizers).to.deep.equal(['backup.example.com/protect']);
    });

    it('keeps ownerReferences others set when it updates', () => {
      const existing = ours();
      const foreign = { apiVersion: 'example.com/v1', kind: 'Bundle', name: 'b', uid: 'bundle-uid' };
      existing.metadata.ownerReferences = [...(existing.metadata.ownerReferences ?? []), foreign];
      const body = bodyOf(plan(undefined, existing, { ...VALUES, password: 'rotated' }), 'update');
      expect(body.metadata.ownerReferences).to.deep.include(foreign);
    });

    it('recreates an immutable Secret whose values changed', () => {
      const existing = ours({ immutable: true });
      const body = bodyOf(plan({ immutable: true }, existing, { ...VALUES, password: 'rotated' }), 'recreate');
      expect(body.immutable).to.equal(true);
      expect(body.data?.password).to.equal(b64('rotated'));
      expect(body.metadata.resourceVersion).to.equal(undefined);
    });

    it('recreates an immutable Secret when the target is no longer immutable', () => {
      const body = bodyOf(plan(undefined, ours({ immutable: true })), 'recreate');
      expect(body).to.not.have.property('immutable');
    });

    it('updates a mutable Secret in place to make it immutable', () => {
      expect(bodyOf(plan({ immutable: true }, ours()), 'update').immutable).to.equal(true);
    });

    it('recreates when the type differs, keeping labels and annotations others added', () => {
      const existing = ours();
      existing.metadata.labels = { ...existing.metadata.labels, 'team.example.com/owner': 'a' };
      const body = bodyOf(plan({ type: 'kubernetes.io/basic-auth' }, existing), 'recreate');
      expect(body.type).to.equal('kubernetes.io/basic-auth');
      expect(body.metadata.labels).to.include({ 'team.example.com/owner': 'a' });
      expect(body.metadata.resourceVersion).to.equal(undefined);
      expect(body.metadata.ownerReferences).to.have.length(1);
    });

    it('reports a conflict for a Secret that belongs to another ManagedSecret', () => {
      // ManagedSecret "other" writes Secret "db" (its target.name) ...
      const byOther = stored(bodyOf(plan({ name: 'db' }, undefined, VALUES, 'other'), 'create'));
      // ... so ManagedSecret "db" must not take it over, even with the same values.
      const message = messageOf(plan(undefined, byOther, VALUES, 'db'), 'conflict');
      expect(message).to.include('Secret team-a/db exists and is not managed by this ManagedSecret');
      expect(message).to.include('it belongs to ManagedSecret other');
      expect(message).to.not.include(VALUES.password);
      expect(message).to.not.include(b64(VALUES.password));
    });

    it('reports a conflict for a Secret that belongs to nobody', () => {
      const existing = foreignSecret({}, null);
      const p = plan(undefined, existing);
      const message = messageOf(p, 'conflict');
      expect(p).to.have.property('reason', 'SecretConflict');
      expect(message).to.include('Secret team-a/db exists and is not managed by this ManagedSecret');
      expect(message).to.include('creationPolicy Merge');
      expect(message).to.include(`${ANNOTATION_MERGE_FROM}: db`);
      expect(message).to.not.include('belongs to');
      expect(message).to.not.include('not ours');
    });

    it('reports a conflict with an Orphan policy too', () => {
      expect(plan({ creationPolicy: 'Orphan' }, foreignSecret()).action).to.equal('conflict');
    });
  });

  describe('planSecretWrite, creationPolicy Orphan', () => {
    it('creates the Secret without an ownerReference', () => {
      const body = bodyOf(plan({ creationPolicy: 'Orphan' }, undefined), 'create');
      expect(body.metadata).to.not.have.property('ownerReferences');
      expect(body.metadata.labels).to.include({ [LABEL_MANAGED_BY]: 'secretsync' });
    });

    it('does nothing when the Secret is as desired', () => {
      const existing = ours({ creationPolicy: 'Orphan' });
      expect(plan({ creationPolicy: 'Orphan' }, existing)).to.deep.equal({ action: 'none' });
    });

    it('drops our ownerReference from a Secret created under creationPolicy Owner', () => {
      const body = bodyOf(plan({ creationPolicy: 'Orphan' }, ours()), 'update');
      expect(body.metadata.ownerReferences ?? []).to.deep.equal([]);
    });
  });

  describe('planSecretWrite, creationPolicy Merge', () => {
    const merge: TargetSpec = { creationPolicy: 'Merge' };

    it('refuses a Secret without the consent annotation (MergeNotAllowed), saying which annotation to add', () => {
      const p = plan(merge, foreignSecret({}, null));
      const message = messageOf(p, 'conflict');
      expect(p).to.have.property('reason', 'MergeNotAllowed');
      expect(message).to.include('Secret team-a/db does not allow merging');
      expect(message).to.include(`add the annotation ${ANNOTATION_MERGE_FROM}: db to the Secret`);
      expect(message).to.include(`kubectl annotate secret -n team-a db ${ANNOTATION_MERGE_FROM}=db --overwrite`);
      expect(message).to.not.include('not ours');
      for (const empty of ['', '  '])
        expect(plan(merge, foreignSecret({}, empty))).to.have.property('reason', 'MergeNotAllowed');
    });

    it('refuses a Secret that consents to another ManagedSecret, naming it', () => {
      const p = plan(merge, foreignSecret({}, 'other'));
      expect(p).to.have.property('reason', 'MergeNotAllowed');
      expect(messageOf(p, 'conflict')).to.include('allows merging only from ManagedSecret "other"');
      // One name, not a list.
      expect(plan(merge, foreignSecret({}, 'db,other'))).to.have.property('reason', 'MergeNotAllowed');
    });

    it('accepts the consent with surrounding whitespace', () => {
      expect(plan(merge, foreignSecret({}, ' db ')).action).to.equal('update');
    });

    it('stops writing into a Secret it merged into once the consent is removed', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      delete merged.metadata.annotations?.[ANNOTATION_MERGE_FROM];
      expect(plan(merge, merged, { ...VALUES, password: 'rotated' })).to.have.property('reason', 'MergeNotAllowed');
    });

    it('refuses to merge into a Secret of a type the cluster acts on, even with consent', () => {
      for (const type of ['kubernetes.io/service-account-token', 'bootstrap.kubernetes.io/token']) {
        const p = plan(merge, foreignSecret({ type }));
        expect(p, type).to.have.property('reason', 'MergeNotAllowed');
        expect(messageOf(p, 'conflict')).to.include(`Secret type "${type}" is refused`);
      }
    });

    it('reports a missing Secret instead of creating one', () => {
      const message = messageOf(plan(merge, undefined), 'missing');
      expect(message).to.include('Secret team-a/db does not exist');
      expect(message).to.include('Merge');
    });

    it('writes our keys next to the foreign ones, keeping the rest of the Secret', () => {
      const existing = foreignSecret({ type: 'kubernetes.io/tls' });
      existing.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', uid: 'cm-uid' }];
      const body = bodyOf(plan(merge, existing), 'update');
      expect(body.data).to.deep.equal({
        'other-key': b64('not ours'),
        username: b64('app'),
        password: b64('hunter2-correct-horse'),
      });
      expect(body.type).to.equal('kubernetes.io/tls');
      expect(body.metadata.resourceVersion).to.equal('7');
      expect(body.metadata.ownerReferences).to.deep.equal(existing.metadata.ownerReferences);
      expect(body.metadata.labels).to.deep.equal({ app: 'web', [LABEL_MANAGED]: 'true' });
      expect(body.metadata.annotations).to.include({
        owner: 'platform-team',
        [ANNOTATION_MANAGED_KEYS]: 'password,username',
        [ANNOTATION_MANAGED_SECRET]: 'db',
      });
    });

    it('does nothing when our keys already match', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      expect(plan(merge, merged)).to.deep.equal({ action: 'none' });
    });

    it('does nothing when only foreign keys changed', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      merged.data = { ...merged.data, 'other-key': b64('changed by its owner'), added: b64('new') };
      expect(plan(merge, merged)).to.deep.equal({ action: 'none' });
    });

    it('updates to restore our label or annotations when they were removed', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      const noLabel = structuredClone(merged);
      noLabel.metadata.labels = { app: 'web' };
      expect(bodyOf(plan(merge, noLabel), 'update').metadata.labels).to.deep.equal({
        app: 'web',
        [LABEL_MANAGED]: 'true',
      });
      const noKeys = structuredClone(merged);
      delete noKeys.metadata.annotations?.[ANNOTATION_MANAGED_KEYS];
      expect(bodyOf(plan(merge, noKeys), 'update').metadata.annotations).to.include({
        [ANNOTATION_MANAGED_KEYS]: 'password,username',
      });
    });

    it('updates one of our keys edited by hand, leaving foreign keys alone', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      merged.data = { ...merged.data, password: b64('edited'), 'other-key': b64('changed by its owner') };
      const body = bodyOf(plan(merge, merged), 'update');
      expect(body.data).to.include({ password: b64(VALUES.password), 'other-key': b64('changed by its owner') });
    });

    it('removes keys we managed before that are no longer desired, but not foreign ones', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      expect(managedKeysOf(merged)).to.deep.equal(['password', 'username']);
      const body = bodyOf(plan(merge, merged, { password: VALUES.password }), 'update');
      expect(body.data).to.deep.equal({ 'other-key': b64('not ours'), password: b64(VALUES.password) });
      expect(body.metadata.annotations?.[ANNOTATION_MANAGED_KEYS]).to.equal('password');

      // Once gone, the plan is stable.
      expect(plan(merge, stored(body, '9'), { password: VALUES.password })).to.deep.equal({ action: 'none' });
    });

    it('does not remove keys that another ManagedSecret merged into the same Secret', () => {
      // ManagedSecret "tls" merged key "tls.crt" into the Secret first ...
      const byOther = stored(
        bodyOf(plan(merge, foreignSecret({}, 'tls'), { 'tls.crt': 'CERT' }, 'tls'), 'update'),
        '8',
      );
      expect(managedSecretOf(byOther)).to.equal('tls');
      // ... then ManagedSecret "db" merges its own keys: not allowed while the consent names "tls" ...
      expect(plan(merge, byOther, VALUES, 'db')).to.have.property('reason', 'MergeNotAllowed');
      // ... and with the consent moved to "db", still refused: "tls.crt" is not its to remove.
      (byOther.metadata.annotations as Record<string, string>)[ANNOTATION_MERGE_FROM] = 'db';
      const p = plan(merge, byOther, VALUES, 'db');
      expect(p).to.have.property('reason', 'SecretConflict');
      expect(messageOf(p, 'conflict')).to.include('already managed by ManagedSecret tls');
    });

    it('reports a conflict when an immutable Secret would have to change', () => {
      const message = messageOf(plan(merge, foreignSecret({ immutable: true })), 'conflict');
      expect(message).to.include('immutable');
    });

    it('does nothing to an immutable Secret that already holds our keys', () => {
      const merged = stored(bodyOf(plan(merge, foreignSecret()), 'update'), '8');
      merged.immutable = true;
      expect(plan(merge, merged)).to.deep.equal({ action: 'none' });
    });

    it('never copies GitOps tracking labels from the target', () => {
      const target: TargetSpec = {
        creationPolicy: 'Merge',
        labels: { 'app.kubernetes.io/instance': 'my-app', keep: 'me' },
        annotations: { 'argocd.argoproj.io/tracking-id': 'my-app:x' },
      };
      const body = bodyOf(plan(target, foreignSecret()), 'update');
      expect(body.metadata.labels).to.not.have.property('app.kubernetes.io/instance');
      expect(body.metadata.labels).to.have.property('keep', 'me');
      expect(body.metadata.annotations).to.not.have.property('argocd.argoproj.io/tracking-id');
    });
  });

  describe('planSecretWrite, creationPolicy None', () => {
    it('never writes', () => {
      const none: TargetSpec = { creationPolicy: 'None' };
      expect(plan(none, undefined)).to.deep.equal({ action: 'none' });
      expect(plan(none, foreignSecret())).to.deep.equal({ action: 'none' });
      expect(plan(none, ours(undefined, { other: 'x' }))).to.deep.equal({ action: 'none' });
    });
  });

  describe('GitOps tracking metadata', () => {
    it('is never copied into a Secret we create', () => {
      const body = bodyOf(
        plan(
          {
            labels: { 'app.kubernetes.io/instance': 'my-app', 'argocd.argoproj.io/secret-type': 'repository' },
            annotations: {
              'argocd.argoproj.io/tracking-id': 'my-app:secretsync.io/ManagedSecret:team-a/db',
              'argocd.argoproj.io/compare-options': 'IgnoreExtraneous',
            },
          },
          undefined,
        ),
        'create',
      );
      const keys = [...Object.keys(body.metadata.labels ?? {}), ...Object.keys(body.metadata.annotations ?? {})];
      expect(
        keys.filter((k) => k.startsWith('argocd.argoproj.io/') || k === 'app.kubernetes.io/instance'),
      ).to.deep.equal([]);
    });
  });

  describe('an empty target.type', () => {
    it('is Opaque, so a stored Secret (which the API server made Opaque) is not recreated on every pass', () => {
      const body = bodyOf(plan({ type: '' }, undefined), 'create');
      expect(body.type).to.equal('Opaque');
      expect(plan({ type: '' }, stored(body))).to.deep.equal({ action: 'none' });
    });
  });

  describe('observedDataHmac', () => {
    for (const creationPolicy of ['Owner', 'Orphan', 'Merge'] as const) {
      it(`${creationPolicy}: equals the desired HMAC when in sync, and sees only our keys`, () => {
        const target: TargetSpec = { creationPolicy };
        const ms = managedSecret(target);
        const desired = buildDesired(ms, VALUES, HMAC_KEY);
        const secret =
          creationPolicy === 'Merge' ? stored(bodyOf(plan(target, foreignSecret()), 'update')) : ours(target);
        expect(observedDataHmac(ms, secret, HMAC_KEY)).to.equal(desired.hmac);

        const added = structuredClone(secret);
        added.data = { ...added.data, 'added-by-others': b64('x') };
        expect(observedDataHmac(ms, added, HMAC_KEY)).to.equal(desired.hmac);

        const edited = structuredClone(secret);
        edited.data = { ...edited.data, password: b64('edited') };
        expect(observedDataHmac(ms, edited, HMAC_KEY)).to.not.equal(desired.hmac);

        const forgotten = structuredClone(secret);
        delete forgotten.metadata.annotations?.[ANNOTATION_MANAGED_KEYS];
        expect(observedDataHmac(ms, forgotten, HMAC_KEY)).to.not.equal(desired.hmac);
      });
    }
  });

  describe('no write loops', () => {
    type Addition =
      | { kind: 'data' | 'label' | 'annotation'; key: string; value: string }
      | { kind: 'finalizer'; key: string }
      | { kind: 'owner'; key: string };
    const foreignKey = fc
      .stringMatching(/^[a-z][a-z0-9.-]{0,10}$/)
      .filter((k) => !['username', 'password'].includes(k));
    const addition: fc.Arbitrary<Addition> = fc.oneof(
      fc.record({ kind: fc.constantFrom('data' as const), key: foreignKey, value: fc.string({ maxLength: 8 }) }),
      fc.record({
        kind: fc.constantFrom('label' as const, 'annotation' as const),
        key: foreignKey.map((k) => `example.com/${k}`),
        value: fc.string({ maxLength: 8 }),
      }),
      fc.record({ kind: fc.constantFrom('finalizer' as const), key: foreignKey.map((k) => `example.com/${k}`) }),
      fc.record({ kind: fc.constantFrom('owner' as const), key: foreignKey }),
    );
    const apply = (secret: SecretObject, a: Addition): SecretObject => {
      const next = structuredClone(secret);
      const meta = next.metadata;
      if (a.kind === 'data') next.data = { ...next.data, [a.key]: b64(a.value) };
      else if (a.kind === 'label') meta.labels = { ...meta.labels, [a.key]: a.value };
      else if (a.kind === 'annotation') meta.annotations = { ...meta.annotations, [a.key]: a.value };
      else if (a.kind === 'finalizer') meta.finalizers = [...((meta.finalizers as string[] | undefined) ?? []), a.key];
      else
        meta.ownerReferences = [
          ...(meta.ownerReferences ?? []),
          { apiVersion: 'example.com/v1', kind: 'Bundle', name: a.key, uid: `uid-${a.key}` },
        ];
      return next;
    };

    for (const creationPolicy of ['Owner', 'Orphan', 'Merge'] as const) {
      it(`${creationPolicy}: what others add never makes a write, and our next write keeps it (fast-check)`, () => {
        const target: TargetSpec = { creationPolicy, labels: { team: 'a' }, annotations: { note: 'x' } };
        fc.assert(
          fc.property(fc.array(addition, { minLength: 1, maxLength: 6 }), (additions) => {
            let secret =
              creationPolicy === 'Merge' ? stored(bodyOf(plan(target, foreignSecret()), 'update')) : ours(target);
            for (const a of additions) {
              secret = apply(secret, a);
              expect(plan(target, secret), JSON.stringify(a)).to.deep.equal({ action: 'none' });
            }
            // A change of value: one write, which keeps what the others added, then nothing again.
            const rotated = { ...VALUES, password: 'rotated' };
            const body = bodyOf(plan(target, secret, rotated), 'update');
            for (const a of additions) {
              if (a.kind === 'data') expect(body.data).to.have.property(a.key);
              if (a.kind === 'finalizer') expect(body.metadata.finalizers).to.include(a.key);
              if (a.kind === 'owner') expect(body.metadata.ownerReferences?.map((r) => r.name)).to.include(a.key);
            }
            expect(plan(target, stored(body, '200'), rotated)).to.deep.equal({ action: 'none' });
          }),
          { seed: 31, numRuns: 150 },
        );
      });
    }
  });
});
