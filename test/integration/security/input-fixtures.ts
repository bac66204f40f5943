// Shared pieces of the tests of what a hostile ManagedSecret can carry (regex,
// template, Secret type, write loop, bounds...): a "victim" namespace whose
// ManagedSecret must keep syncing while a hostile one is reconciled, the API
// server's answer to an object our CEL rules should refuse, and the Events of
// one object. Only helpers that exist at every version of operator.ts are used,
// so that each test can also be run against the code before the fix.
import { expect } from 'chai';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { API_VERSION, type Condition, type ManagedSecret } from '../../../src/api/types.js';
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import { waitFor, type TestCluster } from '../../../tools/testenv/index.js';
import {
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  listEvents,
  readyOf,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
} from '../operator.js';

/** A namespace with a local store and one ManagedSecret `app` (key `p` from entry `db`), synced. */
export interface Victim {
  namespace: string;
  fixture: LocalStoreFixture;
  /** How many changes changeAndTimeSync made: the next one adds key `q<changes+1>`. */
  changes: number;
}

export const VICTIM_VALUE = 'victim-value';

/** Creates the victim's namespace, store and its ManagedSecret (not waiting: the operator may not run yet). */
export async function createVictim(client: KubeClient, namespace: string): Promise<Victim> {
  await ensureNamespace(client, namespace);
  const fixture = await createLocalStore(client, namespace);
  await fixture.store.put('db', { password: VICTIM_VALUE });
  await createSecretStore(client, namespace, 'local', fixture.dir);
  await createManagedSecret(client, namespace, {
    metadata: { name: 'app' },
    spec: {
      storeRef: { name: 'local' },
      refreshInterval: '1h',
      data: [{ secretKey: 'p', remoteRef: { key: 'db', property: 'password' } }],
    },
  });
  return { namespace, fixture, changes: 0 };
}

/** Waits until the victim's ManagedSecret has synced once. */
export async function victimSynced(client: KubeClient, victim: Victim, timeoutMs = 30_000): Promise<void> {
  await waitForSecretData(client, victim.namespace, 'app', (d) => d.p === VICTIM_VALUE, timeoutMs);
}

/**
 * Changes the victim's ManagedSecret (one more data key) and returns the
 * milliseconds until its Secret holds the new key: the time a tenant that did
 * nothing wrong waits for its change while the hostile object is reconciled.
 */
export async function changeAndTimeSync(client: KubeClient, victim: Victim, timeoutMs = 30_000): Promise<number> {
  victim.changes += 1;
  const data = [{ secretKey: 'p', remoteRef: { key: 'db', property: 'password' } }];
  for (let i = 1; i <= victim.changes; i++)
    data.push({ secretKey: `q${i}`, remoteRef: { key: 'db', property: 'password' } });
  const newKey = `q${victim.changes}`;
  const started = performance.now();
  await client.request('PATCH', `/apis/${API_VERSION}/namespaces/${victim.namespace}/managedsecrets/app`, {
    body: { spec: { data } },
    contentType: 'application/merge-patch+json',
  });
  await waitForSecretData(client, victim.namespace, 'app', (d) => d[newKey] === VICTIM_VALUE, timeoutMs);
  return performance.now() - started;
}

/** What a BlockMeter saw. */
export interface Blocking {
  /** Longest stretch the event loop did not turn while this process was on a CPU (ms). */
  maxBlockMs: number;
  /** perf_hooks' monitorEventLoopDelay maximum over the same time (ms), descheduled time included. */
  loopDelayMaxMs: number;
}

/**
 * Measures how long the (in-process) operator keeps the event loop from
 * turning. perf_hooks.monitorEventLoopDelay alone counts every delay,
 * including time the process waited for a CPU: on a machine shared by many
 * test runs it reports 150 ms gaps with an idle operator. So a 5 ms timer also
 * reads the process's CPU time, and a gap counts as blocking only as far as
 * the process was running meanwhile (min of the gap and the CPU time used):
 * a backtracking regular expression or a huge render is CPU all the way, a
 * wait for the scheduler is not. The monitor's maximum is reported beside it.
 */
export function startBlockMeter(): { stop(): Blocking } {
  const tickMs = 5;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let lastWall = performance.now();
  let lastCpu = process.cpuUsage();
  let maxBlockMs = 0;
  const timer = setInterval(() => {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    const gapMs = wall - lastWall - tickMs;
    const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    maxBlockMs = Math.max(maxBlockMs, Math.min(gapMs, cpuMs));
    lastWall = wall;
    lastCpu = cpu;
  }, tickMs);
  return {
    stop() {
      clearInterval(timer);
      loop.disable();
      return { maxBlockMs, loopDelayMaxMs: loop.max / 1e6 };
    },
  };
}

/**
 * The other tenant, on a thread of its own: it changes the victim's
 * ManagedSecret `changes` times, `spacingMs` apart, and times each change until
 * its Secret holds the new key. A worker thread has its own event loop, so the
 * clock keeps running while an in-process operator blocks the test's loop; a
 * timer on the test's loop would stop with the operator's and see nothing.
 * Plain JavaScript (evaluated source) with node:https: no loader in the worker.
 */
export async function otherTenantLatencies(
  cluster: TestCluster,
  victim: Victim,
  changes: number,
  spacingMs: number,
  timeoutMs = 30_000,
): Promise<number[]> {
  const kc = cluster.kubeConfig();
  const user = kc.getCurrentUser();
  const server = kc.getCurrentCluster();
  const pem = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');
  const first = victim.changes + 1;
  victim.changes += changes;
  const worker = new Worker(OTHER_TENANT_SOURCE, {
    eval: true,
    workerData: {
      server: server?.server,
      ca: pem(server?.caData),
      cert: pem(user?.certData),
      key: pem(user?.keyData),
      msPath: `/apis/${API_VERSION}/namespaces/${victim.namespace}/managedsecrets/app`,
      secretPath: `/api/v1/namespaces/${victim.namespace}/secrets/app`,
      first,
      changes,
      spacingMs,
      timeoutMs,
      value: VICTIM_VALUE,
    },
  });
  return new Promise<number[]>((resolve, reject) => {
    worker.once('message', (latencies: number[]) => resolve(latencies));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the other tenant's thread exited (${code}) without an answer`)));
  });
}

const OTHER_TENANT_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const https = require('node:https');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, w.server), {
      method, ca: w.ca, cert: w.cert, key: w.key, timeout: 10000,
      headers: body ? { 'content-type': 'application/merge-patch+json' } : {},
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body ? JSON.stringify(body) : undefined);
  });
}
async function main() {
  const latencies = [];
  const item = (k) => ({ secretKey: k, remoteRef: { key: 'db', property: 'password' } });
  for (let n = w.first; n < w.first + w.changes; n++) {
    const data = [item('p')];
    for (let i = 1; i <= n; i++) data.push(item('q' + i));
    const started = performance.now();
    const patched = await request('PATCH', w.msPath, { spec: { data } });
    if (patched.status !== 200) throw new Error('PATCH ' + patched.status + ': ' + patched.body);
    for (;;) {
      const got = await request('GET', w.secretPath);
      const value = got.status === 200 ? (JSON.parse(got.body).data || {})['q' + n] : undefined;
      if (value !== undefined && Buffer.from(value, 'base64').toString('utf8') === w.value) break;
      if (performance.now() - started > w.timeoutMs) break;
      await sleep(20);
    }
    latencies.push(performance.now() - started);
    await sleep(w.spacingMs);
  }
  parentPort.postMessage(latencies);
}
main().catch((err) => { throw err; });
`;

/**
 * Sends `ms` to the API server as the admin and returns the refusal's message;
 * fails the test when the object is accepted (the CEL rule is missing).
 */
export async function admissionRefusal(
  cluster: TestCluster,
  namespace: string,
  ms: { metadata: { name: string }; spec: ManagedSecret['spec'] },
): Promise<string> {
  const res = await cluster.adminRequest('POST', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets`, {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    ...ms,
  });
  expect(res.status, `the API server's answer to ManagedSecret ${ms.metadata.name}: ${res.body}`).to.equal(422);
  return (JSON.parse(res.body) as { message?: string }).message ?? '';
}

/** The Events about one object of `namespace`, with this reason. */
export async function eventsAbout(
  client: KubeClient,
  namespace: string,
  name: string,
  reason: string,
): Promise<{ type?: string; reason?: string; message?: string }[]> {
  type Event = KubeObject & { type?: string; reason?: string; message?: string; involvedObject?: { name?: string } };
  const events = (await listEvents(client, namespace)) as Event[];
  return events.filter((e) => e.involvedObject?.name === name && e.reason === reason);
}

/** Waits until a ManagedSecret's current generation has a Ready condition, whatever it says, and returns it. */
export async function reconciled(
  client: KubeClient,
  namespace: string,
  name: string,
  timeoutMs = 20_000,
): Promise<Condition> {
  return waitFor(
    `ManagedSecret ${namespace}/${name} to be reconciled`,
    async () => {
      const ms = await getManagedSecret(client, namespace, name);
      const ready = readyOf(ms);
      return ready && ms.status?.observedGeneration === ms.metadata.generation ? ready : undefined;
    },
    timeoutMs,
    50,
  );
}

/** Waits for a ManagedSecret to report `reason` (Ready=False) and returns its message. */
export async function failureMessage(
  client: KubeClient,
  namespace: string,
  name: string,
  reason: string,
  timeoutMs = 20_000,
): Promise<string> {
  const ms = await waitForReady(client, namespace, name, 'False', reason, timeoutMs);
  return ms.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
}
