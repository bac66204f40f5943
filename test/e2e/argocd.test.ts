// Argo CD, tried: docs/argocd.md's Applications point at folders that exist;
// argocd/ holds the health checks and the ManagedSecret actions as Lua files in
// Argo CD's resource_customizations layout, and the argocd-cm patch, kustomize
// Component and Helm values generated from them (never stale, never different
// from the files). The scripts, taken from the patch a user pastes, run in
// gopher-lua the way Argo CD runs them (see argocd-lua/main.go): the health
// checks against objects a real operator (and its replicator) wrote and against
// the edge cases; the actions' discovery on each state; the actions' returned
// objects turned into the merge patch Argo CD sends, applied to the real API
// server, with the effect checked (a force-sync fetches a changed value long
// before the refresh interval; rotate-now stores and syncs a new generated
// value, once). Also: a Secret that secretsync writes carries none of Argo CD's
// tracking labels or annotations.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parse, parseAllDocuments } from 'yaml';
import {
  ANNOTATION_FORCE_SYNC,
  ANNOTATION_ROTATE_NOW,
  API_VERSION,
  ReplicationReasons,
  type ManagedSecret,
  type ReplicationTargetStatus,
} from '../../src/api/types.js';
import { KubeClient } from '../../src/kube/client.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalStore } from '../../src/providers/local/index.js';
import { Replicator } from '../../src/replication/replicator.js';
import { TestCluster, waitFor } from '../../tools/testenv/index.js';
import { cacheDir, repoRoot } from '../../tools/testenv/paths.js';
import { freePort } from '../../tools/testenv/processes.js';
import { ARGOCD_DIR, CUSTOMIZATIONS_DIR, readCustomizations, renderArgocd } from '../../tools/generate-argocd.js';
import {
  OPERATOR_NAMESPACE,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../integration/operator.js';
import { installCrds } from '../integration/crds.js';
import { kubeClients, mustKubectl, mustRun, readmeCommand, run, tempDir } from './helpers.js';

const KINDS = ['ManagedSecret', 'SecretStore', 'ClusterSecretStore', 'ReplicationTarget'] as const;
const HEALTH = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown'];
const MANAGED_SECRET_ACTIONS = ['force-sync', 'rotate-now'];
const harnessDir = join(repoRoot, 'test', 'e2e', 'argocd-lua');

interface Health {
  status?: string;
  message?: string;
  error?: string;
}
interface Discovered {
  actions?: { name: string; disabled: boolean; iconClass?: string; displayName?: string }[];
  error?: string;
}
interface ActionResult {
  object?: Record<string, unknown>;
  /** The JSON merge patch Argo CD sends to the API server (from the live object to the returned one). */
  patch?: Record<string, unknown>;
  error?: string;
}

/** The argocd-lua binary, built once per source hash into the cache (Go is a prerequisite, like the control plane). */
async function argocdLua(): Promise<string> {
  const hash = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(harnessDir, f)));
  const dir = join(cacheDir(), 'argocd-lua', hash.digest('hex').slice(0, 16));
  const bin = join(dir, 'argocd-lua');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.tmp-${process.pid}`;
    await mustRun('go', ['build', '-buildvcs=false', '-trimpath', '-o', tmp, '.'], {
      cwd: harnessDir,
      timeoutMs: 300_000,
    });
    renameSync(tmp, bin);
  }
  return bin;
}

async function runLua<T>(mode: 'health' | 'discovery' | 'action', script: string, objects: object[]): Promise<T[]> {
  const result = await run(await argocdLua(), [], { input: JSON.stringify({ mode, script, objects }) });
  if (result.code !== 0) throw new Error(`argocd-lua: ${result.stderr}`);
  return JSON.parse(result.stdout) as T[];
}
const health = (script: string, objects: object[]) => runLua<Health>('health', script, objects);

/** The YAML blocks of docs/argocd.md, parsed (anchors and aliases resolved, as kubectl and Helm do). */
function docYamlBlocks(): Record<string, unknown>[] {
  const doc = readFileSync(join(repoRoot, 'docs', 'argocd.md'), 'utf8');
  return [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].flatMap((m) =>
    parseAllDocuments(m[1] as string).map((d) => {
      if (d.errors.length > 0) throw new Error(`docs/argocd.md: invalid YAML: ${d.errors[0]?.message}`);
      return d.toJS() as Record<string, unknown>;
    }),
  );
}

/** argocd/argocd-cm-patch.yaml, parsed: what a user applies to argocd-cm. */
function argocdCmPatch(): {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data: Record<string, string>;
} {
  return parse(readFileSync(join(ARGOCD_DIR, 'argocd-cm-patch.yaml'), 'utf8')) as ReturnType<typeof argocdCmPatch>;
}

/** The health scripts from the argocd-cm patch, by kind. */
function healthScripts(): Record<(typeof KINDS)[number], string> {
  const data = argocdCmPatch().data;
  const out = {} as Record<(typeof KINDS)[number], string>;
  for (const kind of KINDS) {
    const script = data[`resource.customizations.health.secretsync.io_${kind}`];
    if (typeof script !== 'string') throw new Error(`argocd/argocd-cm-patch.yaml: no health check for ${kind}`);
    out[kind] = script;
  }
  return out;
}

/** The ManagedSecret actions from the argocd-cm patch, parsed as Argo CD parses the key's value. */
function managedSecretActions(): { discovery: string; actions: Record<string, string> } {
  const value = argocdCmPatch().data['resource.customizations.actions.secretsync.io_ManagedSecret'];
  if (typeof value !== 'string') throw new Error('argocd/argocd-cm-patch.yaml: no actions for ManagedSecret');
  const parsed = parse(value) as { 'discovery.lua': string; definitions: { name: string; 'action.lua': string }[] };
  return {
    discovery: parsed['discovery.lua'],
    actions: Object.fromEntries(parsed.definitions.map((d) => [d.name, d['action.lua']])),
  };
}

async function discover(objects: object[]): Promise<Record<string, boolean>[]> {
  const got = await runLua<Discovered>('discovery', managedSecretActions().discovery, objects);
  return got.map((d, i) => {
    if (d.error !== undefined) throw new Error(`discovery of object ${i}: ${d.error}`);
    return Object.fromEntries((d.actions ?? []).map((a) => [a.name, a.disabled]));
  });
}

async function runAction(name: string, objects: object[]): Promise<ActionResult[]> {
  const script = managedSecretActions().actions[name];
  if (script === undefined) throw new Error(`no action ${name}`);
  return runLua<ActionResult>('action', script, objects);
}

/** A UTC timestamp as the actions write it, within the last minute. */
function expectFreshStamp(value: unknown): void {
  expect(value)
    .to.be.a('string')
    .and.match(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  const age = Date.now() - Date.parse(value as string);
  expect(age).to.be.within(-2_000, 60_000);
}

/** A ManagedSecret as the API server returns it, in the states the actions look at. */
function managedSecret(
  opts: {
    bare?: boolean;
    rotation?: boolean;
    rotateNow?: string;
    forceSync?: string;
    status?: Record<string, unknown>;
    deleting?: boolean;
  } = {},
): Record<string, unknown> {
  const annotations: Record<string, string> = {};
  if (opts.rotateNow !== undefined) annotations[ANNOTATION_ROTATE_NOW] = opts.rotateNow;
  if (opts.forceSync !== undefined) annotations[ANNOTATION_FORCE_SYNC] = opts.forceSync;
  if (!opts.bare) annotations.note = 'kept';
  return {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: {
      name: 'app',
      namespace: 'team-a',
      uid: '3f1c1d36-0c1e-4b8e-9d3c-2f4f3d0e9a11',
      resourceVersion: '4711',
      generation: 2,
      creationTimestamp: '2025-01-01T00:00:00Z',
      ...(opts.bare ? {} : { labels: {}, annotations }),
      ...(opts.bare && Object.keys(annotations).length > 0 ? { annotations } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2025-01-02T00:00:00Z', finalizers: ['example.com/hold'] } : {}),
    },
    spec: {
      storeRef: { name: 'local' },
      target: { template: { metadata: {} } },
      data: [{ secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } }],
      ...(opts.rotation
        ? {
            rotation: {
              interval: '720h',
              generator: { password: { length: 24 } },
              remoteRef: { key: 'app/db', property: 'password' },
            },
          }
        : {}),
    },
    ...(opts.bare ? {} : { status: { observedGeneration: 2, conditions: [], ...opts.status } }),
  };
}

const ready = (status: string, extra: Record<string, unknown> = {}) => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'Synced' : 'KeyNotFound',
  message: status === 'True' ? 'Secret team-a/app in sync' : 'SecretStore team-a/local: key app/db not found',
  lastTransitionTime: '2025-01-01T00:00:00Z',
  observedGeneration: 2,
  ...extra,
});
const object = (status?: object, generation = 2) => ({
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name: 'app', namespace: 'team-a', generation },
  ...(status ? { status } : {}),
});
/** A ReplicationTarget (cluster-scoped) with a status shaped as Replicator.writeStatus writes it. */
const replicationTarget = (status?: ReplicationTargetStatus, generation = 3) => ({
  apiVersion: API_VERSION,
  kind: 'ReplicationTarget',
  metadata: { name: 'dr-us-west-2', generation, creationTimestamp: '2025-01-01T00:00:00Z' },
  spec: { kubeconfigSecretRef: { name: 'dr-cluster' }, clusterStores: {}, stores: { namespaces: ['app'] } },
  ...(status ? { status } : {}),
});
const replicationReady = (status: 'True' | 'False', reason: string, message: string, observedGeneration = 3) => ({
  type: 'Ready',
  status,
  reason,
  message,
  lastTransitionTime: '2025-01-01T00:05:00Z',
  observedGeneration,
});
/** What a pass that succeeded writes. */
const replicated = (observedGeneration = 3): ReplicationTargetStatus => ({
  conditions: [
    replicationReady(
      'True',
      ReplicationReasons.Replicated,
      '4 object(s) in sync with the DR cluster',
      observedGeneration,
    ),
  ],
  observedGeneration,
  lagSeconds: 0,
  lastReplicationTime: '2025-01-01T00:05:00Z',
  objectsInSync: 4,
});
/**
 * What a failed pass writes: Ready=False, the lag growing; objectsInSync and lastReplicationTime are
 * those of the last pass that succeeded (the merge patch leaves them).
 */
const failed = (reason: string, message: string, observedGeneration = 3): ReplicationTargetStatus => ({
  conditions: [replicationReady('False', reason, message, observedGeneration)],
  observedGeneration,
  lagSeconds: 125,
  lastReplicationTime: '2025-01-01T00:03:00Z',
  objectsInSync: 4,
});
/** The replicator's messages for each failure reason (src/replication/replicator.ts). */
const FAILURES: Record<Exclude<keyof typeof ReplicationReasons, 'Replicated'>, string> = {
  InvalidKubeconfig: 'the kubeconfig Secret secretsync-system/dr-cluster key kubeconfig does not exist',
  ClusterUnreachable: 'cannot reach the DR cluster at https://dr.example:6443: ECONNREFUSED',
  Unauthorized:
    "the DR cluster refused the kubeconfig's identity (HTTP 401): GET /apis/secretsync.io/v1alpha1: Unauthorized",
  CRDsMissing: 'the DR cluster does not serve secretstores.secretsync.io: install the secretsync CRDs there',
  SourceListFailed:
    'listing /apis/secretsync.io/v1alpha1/namespaces/app/secretstores on this cluster failed, so nothing is copied or deleted: GET /apis/secretsync.io/v1alpha1/namespaces/app/secretstores: secretstores.secretsync.io is forbidden',
  ApplyFailed:
    '1 object(s) could not be written in the DR cluster (3 in sync): SecretStore/app/ps-store: PATCH /apis/secretsync.io/v1alpha1/namespaces/app/secretstores/ps-store: namespaces "app" not found',
};

describe('Argo CD (docs/argocd.md, argocd/)', function () {
  this.timeout(300_000);

  it('points its Applications at folders of this repository that Argo CD can render', () => {
    const apps = docYamlBlocks().filter((b) => b.kind === 'Application') as {
      spec: { source: { path: string; helm?: unknown }; syncPolicy: { syncOptions: string[] } };
    }[];
    expect(apps.map((a) => a.spec.source.path)).to.deep.equal(['manifests', 'charts/secretsync']);
    expect(existsSync(join(repoRoot, 'manifests', 'Kustomization'))).to.equal(true);
    expect(existsSync(join(repoRoot, 'charts', 'secretsync', 'Chart.yaml'))).to.equal(true);
    for (const app of apps) expect(app.spec.syncPolicy.syncOptions).to.include('ServerSideApply=true');
  });

  it('gives the same health check to ManagedSecret, SecretStore, ClusterSecretStore and ReplicationTarget', () => {
    const scripts = healthScripts();
    expect(scripts.SecretStore).to.equal(scripts.ManagedSecret);
    expect(scripts.ClusterSecretStore).to.equal(scripts.ManagedSecret);
    expect(scripts.ReplicationTarget).to.equal(scripts.ManagedSecret);
    // Argo CD opens only base, table and a restricted os library for custom checks.
    expect(scripts.ManagedSecret).to.not.match(/\b(string|math|io|os|debug)\./);
  });

  it("keeps argocd/ in Argo CD's layout, and its patch, Component and Helm values generated from the Lua files", () => {
    // Argo CD's own layout: resource_customizations/<group>/<kind>/health.lua, .../actions/discovery.lua,
    // .../actions/<name>/action.lua.
    expect(readdirSync(CUSTOMIZATIONS_DIR)).to.deep.equal(['secretsync.io']);
    const customizations = readCustomizations();
    expect(customizations.map((c) => c.kind).sort()).to.deep.equal([...KINDS].sort());
    for (const c of customizations) expect(c.health, c.kind).to.be.a('string');
    const withActions = customizations.filter((c) => c.actions);
    expect(withActions.map((c) => c.kind)).to.deep.equal(['ManagedSecret']);
    expect(withActions[0]?.actions?.definitions.map((d) => d.name)).to.deep.equal(MANAGED_SECRET_ACTIONS);

    // Not stale: `npx tsx tools/generate-argocd.ts` would write the same bytes.
    for (const [name, content] of Object.entries(renderArgocd()))
      expect(
        readFileSync(join(ARGOCD_DIR, name), 'utf8'),
        `argocd/${name} is stale: run npx tsx tools/generate-argocd.ts`,
      ).to.equal(content);

    // What a user pastes holds exactly the files' Lua, byte for byte, and nothing else.
    const patch = argocdCmPatch();
    expect([patch.apiVersion, patch.kind, patch.metadata.name]).to.deep.equal(['v1', 'ConfigMap', 'argocd-cm']);
    const file = (...path: string[]) => readFileSync(join(CUSTOMIZATIONS_DIR, 'secretsync.io', ...path), 'utf8');
    const expected: Record<string, string> = {};
    for (const kind of KINDS)
      expected[`resource.customizations.health.secretsync.io_${kind}`] = file(kind, 'health.lua');
    expect(Object.keys(patch.data).sort()).to.deep.equal(
      [...Object.keys(expected), 'resource.customizations.actions.secretsync.io_ManagedSecret'].sort(),
    );
    for (const [key, script] of Object.entries(expected)) expect(patch.data[key], key).to.equal(script);
    const actions = managedSecretActions();
    expect(actions.discovery).to.equal(file('ManagedSecret', 'actions', 'discovery.lua'));
    for (const name of MANAGED_SECRET_ACTIONS)
      expect(actions.actions[name], name).to.equal(file('ManagedSecret', 'actions', name, 'action.lua'));

    // The Helm values and the kustomize Component carry the same data.
    const values = parse(readFileSync(join(ARGOCD_DIR, 'argo-cd-values.yaml'), 'utf8')) as {
      configs: { cm: Record<string, string> };
    };
    expect(values.configs.cm).to.deep.equal(patch.data);
    const component = parse(readFileSync(join(ARGOCD_DIR, 'kustomization.yaml'), 'utf8')) as {
      kind: string;
      patches: { path: string }[];
    };
    expect(component.kind).to.equal('Component');
    expect(component.patches).to.deep.equal([{ path: 'argocd-cm-patch.yaml' }]);
  });

  it("passes the folder's own tests in Argo CD's format (health_test.yaml, actions/action_test.yaml)", async () => {
    const root = join(CUSTOMIZATIONS_DIR, 'secretsync.io');
    const load = (dir: string, path: string) => parse(readFileSync(join(dir, path), 'utf8')) as Record<string, unknown>;
    let healthCases = 0;
    for (const kind of KINDS) {
      const dir = join(root, kind);
      const tests = (load(dir, 'health_test.yaml') as { tests: { healthStatus: Health; inputPath: string }[] }).tests;
      const got = await health(
        readFileSync(join(dir, 'health.lua'), 'utf8'),
        tests.map((t) => load(dir, t.inputPath)),
      );
      tests.forEach((t, i) => expect(got[i], `${kind} ${t.inputPath}`).to.deep.equal(t.healthStatus));
      healthCases += tests.length;
    }
    expect(healthCases).to.be.at.least(9);

    const dir = join(root, 'ManagedSecret', 'actions');
    const spec = load(dir, 'action_test.yaml') as {
      discoveryTests: { inputPath: string; result: { name: string; disabled: boolean }[] }[];
      actionTests: { action: string; inputPath: string; expectedOutputPath: string }[];
    };
    const discovered = await runLua<Discovered>(
      'discovery',
      readFileSync(join(dir, 'discovery.lua'), 'utf8'),
      spec.discoveryTests.map((t) => load(dir, t.inputPath)),
    );
    const byName = (list: { name: string }[]) => [...list].sort((a, b) => a.name.localeCompare(b.name));
    spec.discoveryTests.forEach((t, i) =>
      expect(byName(discovered[i]?.actions ?? []), t.inputPath).to.deep.equal(byName(t.result)),
    );
    expect(new Set(spec.actionTests.map((t) => t.action))).to.deep.equal(new Set(MANAGED_SECRET_ACTIONS));
    for (const t of spec.actionTests) {
      const [result] = await runLua<ActionResult>('action', readFileSync(join(dir, t.action, 'action.lua'), 'utf8'), [
        load(dir, t.inputPath),
      ]);
      expect(result?.error, t.action).to.equal(undefined);
      // The action writes the current time; the expected output holds Argo CD's placeholder for it.
      const annotations = (result?.object as { metadata: { annotations: Record<string, string> } }).metadata
        .annotations;
      for (const key of [ANNOTATION_FORCE_SYNC, ANNOTATION_ROTATE_NOW].filter((k) => k in annotations)) {
        expectFreshStamp(annotations[key]);
        annotations[key] = '0001-01-01T00:00:00Z';
      }
      expect(result?.object, t.action).to.deep.equal(load(dir, t.expectedOutputPath));
    }
  });

  it('uses only what Argo CD gives scripts: base and table functions, and os (date, time) through require', () => {
    const scripts = [
      ...Object.values(healthScripts()),
      managedSecretActions().discovery,
      ...Object.values(managedSecretActions().actions),
    ];
    for (const script of scripts) {
      expect(script).to.not.match(/\b(string|math|io|debug|coroutine)\./);
      expect(script).to.not.match(/\b(load|loadstring|dofile|loadfile)\s*\(/);
      // The global os is not there in Argo CD: scripts take it with require("os").
      if (/\bos\./.test(script)) expect(script).to.match(/^local os = require\("os"\)$/m);
    }
  });

  it('builds argocd-cm with the kustomize Component, keeping the keys already there', async () => {
    const dir = tempDir('argocd-kustomize');
    cpSync(ARGOCD_DIR, join(dir, 'secretsync-argocd'), { recursive: true });
    mkdirSync(join(dir, 'argocd'));
    writeFileSync(
      join(dir, 'argocd', 'argocd-cm.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\ndata:\n  url: https://argocd.example\n',
    );
    writeFileSync(
      join(dir, 'argocd', 'kustomization.yaml'),
      'namespace: argocd\nresources:\n  - argocd-cm.yaml\ncomponents:\n  - ../secretsync-argocd\n',
    );
    const { kubectl: bin } = await kubeClients();
    const built = await mustRun(bin, ['kustomize', join(dir, 'argocd')]);
    const cm = parse(built.stdout) as { metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(cm.metadata).to.deep.equal({ name: 'argocd-cm', namespace: 'argocd' });
    expect(cm.data).to.deep.equal({ url: 'https://argocd.example', ...argocdCmPatch().data });
  });

  it('offers force-sync, and rotate-now only where it applies (discovery.lua)', async () => {
    const { discovery, actions } = managedSecretActions();
    expect(discovery).to.be.a('string');
    expect(Object.keys(actions)).to.deep.equal(MANAGED_SECRET_ACTIONS);
    const cases: [string, object, Record<string, boolean>][] = [
      ['no rotation', managedSecret(), { 'force-sync': false, 'rotate-now': true }],
      [
        'no rotation, no metadata.annotations, no status',
        managedSecret({ bare: true }),
        { 'force-sync': false, 'rotate-now': true },
      ],
      [
        'rotation, before the first one',
        managedSecret({ rotation: true }),
        { 'force-sync': false, 'rotate-now': false },
      ],
      [
        'rotation, the last request handled',
        managedSecret({ rotation: true, rotateNow: 'r1', status: { handledRotateNow: 'r1' } }),
        { 'force-sync': false, 'rotate-now': false },
      ],
      [
        'rotation, a request not yet handled',
        managedSecret({ rotation: true, rotateNow: 'r2', status: { handledRotateNow: 'r1' } }),
        { 'force-sync': false, 'rotate-now': true },
      ],
      [
        'rotation, an empty request (ignored by the operator)',
        managedSecret({ rotation: true, rotateNow: '', status: {} }),
        { 'force-sync': false, 'rotate-now': false },
      ],
      [
        'rotation under way',
        managedSecret({
          rotation: true,
          status: {
            rotationInProgress: {
              dueTime: '2025-01-01T00:00:00Z',
              requestToken: 't',
              startedAt: '2025-01-01T00:00:00Z',
            },
          },
        }),
        { 'force-sync': false, 'rotate-now': true },
      ],
      ['being deleted', managedSecret({ rotation: true, deleting: true }), { 'force-sync': true, 'rotate-now': true }],
    ];
    const got = await discover(cases.map(([, o]) => o));
    // true: disabled.
    cases.forEach(([name, , want], i) => expect(got[i], name).to.deep.equal(want));
    const [full] = await runLua<Discovered>('discovery', discovery, [managedSecret({ rotation: true })]);
    for (const a of full?.actions ?? []) {
      expect(a.displayName, a.name).to.be.a('string').and.not.equal('');
      expect(a.iconClass, a.name).to.match(/^fa /);
    }
  });

  it('force-sync and rotate-now return the object with one annotation changed: the merge patch Argo CD sends is just that', async () => {
    const objects = [
      managedSecret({ bare: true }),
      managedSecret({
        forceSync: '2025-01-01T00:00:00Z',
        rotation: true,
        rotateNow: 'r1',
        status: { handledRotateNow: 'r1' },
      }),
    ];
    const forced = await runAction('force-sync', objects);
    for (const [i, r] of forced.entries()) {
      expect(r.error, `force-sync ${i}`).to.equal(undefined);
      const patch = r.patch as { metadata: { annotations: Record<string, string> } };
      expect(patch, `force-sync ${i}`).to.have.all.keys('metadata');
      expect(patch.metadata).to.have.all.keys('annotations');
      expect(Object.keys(patch.metadata.annotations)).to.deep.equal([ANNOTATION_FORCE_SYNC]);
      expectFreshStamp(patch.metadata.annotations[ANNOTATION_FORCE_SYNC]);
      // Everything else came back as it was, empty objects included (no spurious patch).
      const returned = r.object as { metadata: { annotations: Record<string, string> } };
      const live = objects[i] as { metadata: { annotations?: Record<string, string> } };
      expect({ ...returned, metadata: { ...returned.metadata, annotations: undefined } }).to.deep.equal({
        ...live,
        metadata: { ...live.metadata, annotations: undefined },
      });
    }
    const [withoutRotation, rotating] = await runAction('rotate-now', objects);
    expect(withoutRotation?.error).to.match(/no spec\.rotation/);
    expect(rotating?.error).to.equal(undefined);
    const patch = rotating?.patch as { metadata: { annotations: Record<string, string> } };
    expect(Object.keys(patch)).to.deep.equal(['metadata']);
    expect(Object.keys(patch.metadata)).to.deep.equal(['annotations']);
    expect(Object.keys(patch.metadata.annotations)).to.deep.equal([ANNOTATION_ROTATE_NOW]);
    expectFreshStamp(patch.metadata.annotations[ANNOTATION_ROTATE_NOW]);
  });

  it('reads the Ready condition: Healthy, Degraded with the message, Progressing when missing or behind', async () => {
    const script = healthScripts().ManagedSecret;
    const cases: [string, object, Health][] = [
      [
        'Ready=True',
        object({ observedGeneration: 2, conditions: [ready('True')] }),
        { status: 'Healthy', message: 'Secret team-a/app in sync' },
      ],
      [
        'Ready=False',
        object({ observedGeneration: 2, conditions: [ready('False')] }),
        { status: 'Degraded', message: 'KeyNotFound: SecretStore team-a/local: key app/db not found' },
      ],
      ['no status', object(), { status: 'Progressing' }],
      ['status without conditions', object({ observedGeneration: 2 }), { status: 'Progressing' }],
      [
        'observedGeneration behind',
        object({ observedGeneration: 1, conditions: [ready('True')] }),
        { status: 'Progressing' },
      ],
      [
        "the condition's observedGeneration behind",
        object({ observedGeneration: 2, conditions: [ready('True', { observedGeneration: 1 })] }),
        { status: 'Progressing' },
      ],
      ['Ready=Unknown', object({ observedGeneration: 2, conditions: [ready('Unknown')] }), { status: 'Progressing' }],
      [
        'other conditions only',
        object({ observedGeneration: 2, conditions: [{ type: 'Other', status: 'True' }] }),
        { status: 'Progressing' },
      ],
      [
        'Ready=False without reason or message',
        object({ observedGeneration: 2, conditions: [{ type: 'Ready', status: 'False' }] }),
        { status: 'Degraded', message: 'NotReady: ' },
      ],
    ];
    const got = await health(
      script,
      cases.map(([, o]) => o),
    );
    cases.forEach(([name, , want], i) => {
      const h = got[i] as Health;
      expect(h.error, name).to.equal(undefined);
      expect(HEALTH, name).to.include(h.status);
      expect(h.status, name).to.equal(want.status);
      if (want.message !== undefined) expect(h.message, name).to.equal(want.message);
      else expect(h.message, name).to.be.a('string').and.not.equal('');
    });
  });

  it("reads a ReplicationTarget's status as the replicator writes it: every failure reason is Degraded", async () => {
    const script = healthScripts().ReplicationTarget;
    // A reason added to ReplicationReasons needs a case here.
    expect(Object.keys(FAILURES).sort()).to.deep.equal(
      Object.values(ReplicationReasons)
        .filter((r) => r !== ReplicationReasons.Replicated)
        .sort(),
    );
    const cases: [string, object, Health][] = [
      [
        'Replicated',
        replicationTarget(replicated()),
        { status: 'Healthy', message: '4 object(s) in sync with the DR cluster' },
      ],
      ['created, no pass yet', replicationTarget(), { status: 'Progressing' }],
      ['spec edited after a pass that succeeded', replicationTarget(replicated(2)), { status: 'Progressing' }],
      [
        'spec edited after a pass that failed',
        replicationTarget(failed('Unauthorized', FAILURES.Unauthorized, 2), 3),
        { status: 'Progressing' },
      ],
      ...Object.entries(FAILURES).map(([reason, message]): [string, object, Health] => [
        reason,
        replicationTarget(failed(reason, message)),
        { status: 'Degraded', message: `${reason}: ${message}` },
      ]),
    ];
    const got = await health(
      script,
      cases.map(([, o]) => o),
    );
    cases.forEach(([name, , want], i) => {
      const h = got[i] as Health;
      expect(h.error, name).to.equal(undefined);
      expect(h.status, name).to.equal(want.status);
      if (want.message !== undefined) expect(h.message, name).to.equal(want.message);
      else expect(h.message, name).to.be.a('string').and.not.equal('');
    });
  });

  describe('on objects a real operator wrote', () => {
    let cluster: TestCluster;
    let admin: KubeClient;
    let operator: RunningOperator;
    let replicator: Replicator | undefined;
    let fixture: LocalStoreFixture;
    /** A ReplicationTarget as the API server returns it before the replicator has seen it. */
    let unseenTarget: object;
    let downPort: number;
    const cssDir = tempDir('argocd-css');
    const bogusToken = `bogus-${randomBytes(8).toString('hex')}`;

    before(async function () {
      this.timeout(600_000);
      [cluster] = await Promise.all([TestCluster.start({ name: 'e2e-argocd' }), argocdLua()]);
      admin = new KubeClient(cluster.kubeConfig());
      await installCrds(cluster);
      await ensureNamespace(admin, 'team-a');
      fixture = await createLocalStore(admin, 'team-a');
      await fixture.store.put('app/db', { password: 'pw' });
      await createSecretStore(admin, 'team-a', 'local', fixture.dir);
      await new LocalStore(cssDir, randomBytes(32)).put('x', { y: 'z' });
      operator = await startOperator(cluster);
      // A ClusterSecretStore whose master key Secret does not exist: Ready=False.
      await admin.request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'ClusterSecretStore',
          metadata: { name: 'broken' },
          spec: {
            provider: {
              local: { path: cssDir, masterKeySecretRef: { name: 'no-such-key', namespace: OPERATOR_NAMESPACE } },
            },
          },
        },
      });
      // As Argo CD would have labelled and annotated them in Git.
      const tracking = {
        labels: { 'app.kubernetes.io/instance': 'team-a-apps' },
        annotations: { 'argocd.argoproj.io/tracking-id': 'team-a-apps:secretsync.io/ManagedSecret:team-a/good' },
      };
      await createManagedSecret(admin, 'team-a', {
        metadata: { name: 'good', ...tracking } as { name: string; annotations: Record<string, string> },
        spec: {
          storeRef: { name: 'local' },
          target: {
            labels: {
              'app.kubernetes.io/instance': 'copied?',
              'argocd.argoproj.io/secret-type': 'repository',
              team: 'a',
            },
            annotations: { 'argocd.argoproj.io/tracking-id': 'copied?', note: 'kept' },
          },
          data: [{ secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } }],
        },
      });
      await createManagedSecret(admin, 'team-a', {
        metadata: { name: 'missing-key' },
        spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'x', remoteRef: { key: 'app/nope' } }] },
      });
      // For the actions: one that refreshes hourly (the default), one that rotates hourly.
      await fixture.store.put('app/forced', { password: 'before-force-sync' });
      await createManagedSecret(admin, 'team-a', {
        metadata: { name: 'forced' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          data: [{ secretKey: 'password', remoteRef: { key: 'app/forced', property: 'password' } }],
        },
      });
      await fixture.store.put('app/rotating', { password: 'initial' });
      await createManagedSecret(admin, 'team-a', {
        metadata: { name: 'rotating' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1h',
          data: [{ secretKey: 'password', remoteRef: { key: 'app/rotating', property: 'password' } }],
          rotation: {
            interval: '1h',
            generator: { password: { length: 24 } },
            remoteRef: { key: 'app/rotating', property: 'password' },
          },
        },
      });
      await waitForReady(admin, 'team-a', 'good', 'True', 'Synced');
      await waitForReady(admin, 'team-a', 'missing-key', 'False', 'KeyNotFound');
      await waitForReady(admin, 'team-a', 'forced', 'True', 'Synced');

      // ReplicationTargets. The DR cluster of `dr-self` is this cluster (no second control plane on this
      // shared machine), with a selector that matches nothing: a real pass that succeeds with 0 objects.
      // The others fail as a real DR cluster would: a missing kubeconfig Secret, an identity the API server
      // refuses, and a server nobody listens on.
      downPort = await freePort();
      const kubeconfigs: Record<string, string> = {
        'dr-self': readFileSync(cluster.record().kubeconfigPath, 'utf8'),
        'dr-refused': cluster.kubeconfigYamlForToken(bogusToken),
        'dr-down': cluster.kubeconfigYamlForToken(bogusToken).replace(cluster.server, `https://127.0.0.1:${downPort}`),
      };
      expect(kubeconfigs['dr-down']).to.contain(`127.0.0.1:${downPort}`);
      for (const [name, kubeconfig] of Object.entries(kubeconfigs)) {
        await admin.request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
          body: { apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData: { kubeconfig } },
        });
      }
      for (const [name, secret] of [
        ['dr-self', 'dr-self'],
        ['dr-missing', 'no-such-kubeconfig'],
        ['dr-refused', 'dr-refused'],
        ['dr-down', 'dr-down'],
      ]) {
        await admin.request('POST', `/apis/${API_VERSION}/replicationtargets`, {
          body: {
            apiVersion: API_VERSION,
            kind: 'ReplicationTarget',
            metadata: { name },
            spec: {
              kubeconfigSecretRef: { name: secret },
              clusterStores: { selector: { matchLabels: { 'e2e-argocd': 'none' } } },
              interval: '5s',
            },
          },
        });
      }
      unseenTarget = await admin.get<object>(`/apis/${API_VERSION}/replicationtargets/dr-self`);
      // The replicator the operator runs on its leader (src/replication/run.ts), started here directly.
      replicator = new Replicator({
        kubeConfig: cluster.kubeConfig(),
        logger: createLogger('info', new Writable({ write: (_chunk, _enc, cb) => cb() })),
        metrics: new Metrics({ defaultMetrics: false }),
        clusterName: 'e2e-primary',
        operatorNamespace: OPERATOR_NAMESPACE,
        namespaces: ['team-a'],
        retryDelayMs: 1_000,
        drRequestTimeoutMs: 5_000,
      });
      replicator.start();
    });

    after(async function () {
      this.timeout(60_000);
      await replicator?.stop();
      await operator?.stop();
      fixture?.cleanup();
      admin?.close();
      await cluster?.stop();
    });

    const get = (path: string) => admin.get<object>(`/apis/${API_VERSION}${path}`);

    it('reports Healthy and Degraded as Argo CD would show them', async () => {
      const scripts = healthScripts();
      const readyMessage = (o: object) =>
        (o as { status: { conditions: { type: string; message: string }[] } }).status.conditions.find(
          (c) => c.type === 'Ready',
        )?.message;
      const good = await get('/namespaces/team-a/managedsecrets/good');
      const missing = await get('/namespaces/team-a/managedsecrets/missing-key');
      const [goodHealth, missingHealth] = await health(scripts.ManagedSecret, [good, missing]);
      expect(goodHealth).to.deep.equal({ status: 'Healthy', message: readyMessage(good) });
      expect(missingHealth).to.deep.equal({ status: 'Degraded', message: `KeyNotFound: ${readyMessage(missing)}` });
      expect(missingHealth?.message).to.match(/app\/nope/);
      const [store] = await health(scripts.SecretStore, [await get('/namespaces/team-a/secretstores/local')]);
      expect(store?.status).to.equal('Healthy');
      // The store check runs right after the operator sees the store: wait for its verdict.
      const broken = await waitFor(
        'ClusterSecretStore broken to be checked',
        async () => {
          const [h] = await health(scripts.ClusterSecretStore, [await get('/clustersecretstores/broken')]);
          return h?.status === 'Progressing' ? undefined : h;
        },
        15_000,
        200,
      );
      expect(broken?.status).to.equal('Degraded');
      expect(broken?.message).to.match(/^InvalidProviderConfig: .*no-such-key/);
    });

    it('reports ReplicationTargets Progressing, Healthy and Degraded (with the reason) as Argo CD would show them', async () => {
      const script = healthScripts().ReplicationTarget;
      const [unseen] = await health(script, [unseenTarget]);
      expect(unseen?.status, 'before the first pass').to.equal('Progressing');
      // Each target's verdict, once the replicator has written one for its current generation.
      const verdict = (name: string) =>
        waitFor(
          `ReplicationTarget ${name} to be replicated or fail`,
          async () => {
            const t = await get(`/replicationtargets/${name}`);
            const [h] = await health(script, [t]);
            return h?.status === 'Progressing' ? undefined : { object: t, health: h as Health };
          },
          60_000,
          250,
        );
      const self = await verdict('dr-self');
      expect(self.health).to.deep.equal({ status: 'Healthy', message: '0 object(s) in sync with the DR cluster' });
      const status = (self.object as { status: ReplicationTargetStatus }).status;
      expect(status.objectsInSync).to.equal(0);
      expect(status.lastReplicationTime).to.be.a('string');

      // An edit the replicator has not processed yet: the same object with the next generation.
      const edited = {
        ...self.object,
        metadata: {
          ...(self.object as { metadata: { generation: number } }).metadata,
          generation: (status.observedGeneration ?? 0) + 1,
        },
      };
      const [afterEdit] = await health(script, [edited]);
      expect(afterEdit?.status, 'after an edit').to.equal('Progressing');

      const missing = await verdict('dr-missing');
      expect(missing.health).to.deep.equal({
        status: 'Degraded',
        message: `InvalidKubeconfig: the kubeconfig Secret ${OPERATOR_NAMESPACE}/no-such-kubeconfig key kubeconfig does not exist`,
      });
      const refused = await verdict('dr-refused');
      expect(refused.health.status).to.equal('Degraded');
      expect(refused.health.message).to.match(
        /^Unauthorized: the DR cluster refused the kubeconfig's identity \(HTTP 401\)/,
      );
      expect(refused.health.message).to.not.contain(bogusToken);
      const down = await verdict('dr-down');
      expect(down.health.status).to.equal('Degraded');
      expect(down.health.message).to.match(
        new RegExp(`^ClusterUnreachable: cannot reach the DR cluster at https://127\\.0\\.0\\.1:${downPort}: \\S`),
      );
    });

    it("takes argocd-cm-patch.yaml with the README's kubectl patch command", async () => {
      await ensureNamespace(admin, 'argocd');
      await admin.request('POST', '/api/v1/namespaces/argocd/configmaps', {
        body: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'argocd-cm' },
          data: { url: 'https://argocd.example' },
        },
      });
      const [command, ...args] = readmeCommand('kubectl -n argocd patch configmap argocd-cm --patch-file');
      expect(command).to.equal('kubectl');
      // The README's path is relative to the repository's root.
      const argv = args.map((a) => (a.startsWith('argocd/') ? join(repoRoot, a) : a));
      expect(argv).to.include(join(ARGOCD_DIR, 'argocd-cm-patch.yaml'));
      await mustKubectl(cluster.record().kubeconfigPath, argv);
      const cm = await admin.get<{ data: Record<string, string> }>('/api/v1/namespaces/argocd/configmaps/argocd-cm');
      expect(cm.data).to.deep.equal({ url: 'https://argocd.example', ...argocdCmPatch().data });
    });

    /** Runs an action as Argo CD does: on the live object, then the merge patch it yields sent to the API server. */
    async function runActionLive(
      name: string,
      path: string,
    ): Promise<{ patch: Record<string, unknown>; after: ManagedSecret }> {
      const live = await get(path);
      const [result] = await runAction(name, [live]);
      expect(result?.error, name).to.equal(undefined);
      const patch = result?.patch as Record<string, unknown>;
      // Only metadata: nothing for the status subresource, nothing of the spec that Git holds.
      expect(Object.keys(patch)).to.deep.equal(['metadata']);
      const after = await admin.request<ManagedSecret>('PATCH', `/apis/${API_VERSION}${path}`, {
        body: patch,
        contentType: 'application/merge-patch+json',
      });
      return { patch, after };
    }

    it('force-sync: the Secret gets a changed store value at once, not at the hourly refresh', async () => {
      const path = '/namespaces/team-a/managedsecrets/forced';
      expect((await discover([await get(path)]))[0]).to.deep.equal({ 'force-sync': false, 'rotate-now': true });
      const token = `after-${randomBytes(6).toString('hex')}`;
      await fixture.store.put('app/forced', { password: token });
      // The operator does not look at the store again on its own before the hour is up.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(decoded(await getSecret(admin, 'team-a', 'forced')).password).to.equal('before-force-sync');
      const started = Date.now();
      const { patch, after } = await runActionLive('force-sync', path);
      expect(after.metadata.annotations?.[ANNOTATION_FORCE_SYNC]).to.equal(
        (patch as { metadata: { annotations: Record<string, string> } }).metadata.annotations[ANNOTATION_FORCE_SYNC],
      );
      await waitForSecretData(admin, 'team-a', 'forced', (d) => d.password === token, 15_000);
      console.log(`      force-sync: the Secret had the new value ${Date.now() - started} ms after the patch`);
    });

    it('rotate-now: offered once the first rotation is done, rotates once, stores and syncs a new value', async () => {
      const path = '/namespaces/team-a/managedsecrets/rotating';
      // The first rotation happens at once (no lastRotationTime yet).
      const first = await waitFor(
        'the first rotation',
        async () => {
          const ms = await getManagedSecret(admin, 'team-a', 'rotating');
          return ms.status?.rotationVersion && !ms.status.rotationInProgress ? ms : undefined;
        },
        30_000,
      );
      const before = decoded(
        await waitForSecretData(
          admin,
          'team-a',
          'rotating',
          (d) => d.password !== undefined && d.password !== 'initial',
        ),
      ).password;
      const versionBefore = (await fixture.store.get('app/rotating')).version;
      expect((await discover([await get(path)]))[0]).to.deep.equal({ 'force-sync': false, 'rotate-now': false });

      const { patch, after } = await runActionLive('rotate-now', path);
      const requested = (patch as { metadata: { annotations: Record<string, string> } }).metadata.annotations[
        ANNOTATION_ROTATE_NOW
      ];
      expect(after.metadata.annotations?.[ANNOTATION_ROTATE_NOW]).to.equal(requested);
      // Right after the patch (the operator has not taken the request yet): not offered again.
      expect(after.status?.handledRotateNow).to.not.equal(requested);
      expect((await discover([after]))[0]?.['rotate-now'], 'rotate-now while the request is pending').to.equal(true);

      const done = await waitFor(
        'the rotation asked for',
        async () => {
          const ms = await getManagedSecret(admin, 'team-a', 'rotating');
          const status = ms.status ?? {};
          const taken = status.handledRotateNow === requested && !status.rotationInProgress;
          return taken && status.rotationVersion !== first.status?.rotationVersion ? ms : undefined;
        },
        30_000,
      );
      expect(Number(done.status?.rotationVersion)).to.equal(Number(first.status?.rotationVersion) + 1);
      const stored = await fixture.store.get('app/rotating');
      expect(stored.version).to.equal(versionBefore + 1);
      expect(stored.properties.password).to.be.a('string').and.have.length(24).and.not.equal(before);
      await waitForSecretData(admin, 'team-a', 'rotating', (d) => d.password === stored.properties.password);
      // Once taken, offered again; and once only: a second pass does not rotate again.
      expect((await discover([done]))[0]).to.deep.equal({ 'force-sync': false, 'rotate-now': false });
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await fixture.store.get('app/rotating')).version).to.equal(stored.version);
    });

    it('writes Secrets without Argo CD tracking labels or annotations, so Argo CD never prunes them', async () => {
      const secret = await getSecret(admin, 'team-a', 'good');
      const keys = [...Object.keys(secret?.metadata.labels ?? {}), ...Object.keys(secret?.metadata.annotations ?? {})];
      expect(
        keys.filter((k) => k.startsWith('argocd.argoproj.io/') || k === 'app.kubernetes.io/instance'),
      ).to.deep.equal([]);
      expect(secret?.metadata.labels?.team).to.equal('a');
      expect(secret?.metadata.annotations?.note).to.equal('kept');
      expect(secret?.metadata.ownerReferences?.[0]?.kind).to.equal('ManagedSecret');
    });
  });
});
