// Attack: a template that names one large value thousands of times. 4,000
// references to a 100 KiB value are 28 KB of template source (under the
// 64 KiB source bound) and would render 400 MB: mustache builds the whole
// string before anyone can look at its size, and the operator, run as the
// chart runs it (its memory limit and NODE_OPTIONS), dies or is OOM-killed,
// taking every namespace's syncs with it. The renderer must stop at the Secret
// size bound (SecretTooLarge) and the process stay under the chart's memory
// limit; a template source over its own bound is TemplateTooLarge. The
// operator runs as a process of its own so that its memory is its own: its
// peak RSS (VmHWM) is read from /proc.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { repoRoot } from '../../../tools/testenv/paths.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getSecret,
  OPERATOR_NAMESPACE,
  spawnOperatorProcess,
  type LocalStoreFixture,
  type OperatorProcess,
} from '../operator.js';
import { changeAndTimeSync, createVictim, failureMessage, victimSynced, type Victim } from './input-fixtures.js';

const VALUE_BYTES = 100 * 1024;
/** 4,000 × 100 KiB: 400 MB, below V8's longest string (so a naive render really builds it). */
const REFERENCES = 4_000;
/** Two keys of 5,000 references: 70 KB of source, over the default 64 KiB --max-template-bytes (each key is within the CRD's bound). */
const OVERSIZED_REFERENCES = 5_000;

interface ChartValues {
  resources: { limits: { memory: string } };
  nodeOptions: string;
}

/** The chart's memory limit in bytes (Kubernetes quantity: Ki, Mi, Gi, or plain bytes). */
function bytesOf(quantity: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity} in the chart's values`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** Peak and current resident memory of a process, from /proc (bytes). */
function memoryOf(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return undefined; // the process is gone
  }
}

describe('security: a template that amplifies a large value', function () {
  this.timeout(180_000);
  const client = () => adminClient(sharedCluster());
  const hostileNs = uniqueName('tmpl-hostile');
  const chart = parse(readFileSync(join(repoRoot, 'charts', 'secretsync', 'values.yaml'), 'utf8')) as ChartValues;
  const memoryLimit = bytesOf(chart.resources.limits.memory);
  let hostile: LocalStoreFixture;
  let victim: Victim;
  let operator: OperatorProcess | undefined;
  let peak = 0;
  let sampler: NodeJS.Timeout | undefined;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), OPERATOR_NAMESPACE);
    await ensureNamespace(client(), hostileNs);
    hostile = await createLocalStore(client(), hostileNs);
    // Random text: nothing in the pipeline can compress or share it.
    const big = randomBytes((VALUE_BYTES / 4) * 3).toString('base64');
    await hostile.store.put('big', { value: big });
    await createSecretStore(client(), hostileNs, 'local', hostile.dir);
    victim = await createVictim(client(), uniqueName('tmpl-victim'));
    operator = spawnOperatorProcess(
      sharedCluster(),
      [hostileNs, victim.namespace],
      ['--leader-elect', 'false'],
      // As the chart runs it: the heap cap that keeps it under the memory limit.
      { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${chart.nodeOptions}`.trim() },
    );
    const pid = operator.child.pid;
    if (pid === undefined) throw new Error('the operator process did not start');
    sampler = setInterval(() => {
      const m = memoryOf(pid);
      if (m) peak = Math.max(peak, m.hwm, m.rss);
    }, 50);
    await victimSynced(client(), victim, 60_000);
  });

  after(async () => {
    if (sampler) clearInterval(sampler);
    const child = operator?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    }
    hostile?.cleanup();
    victim?.fixture.cleanup();
  });

  it('stops rendering at the Secret size bound, stays under the chart memory limit, and keeps syncing others', async () => {
    const proc = operator as OperatorProcess;
    const data = [{ secretKey: 'big', remoteRef: { key: 'big', property: 'value' } }];
    await createManagedSecret(client(), hostileNs, {
      metadata: { name: 'amplified' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '2s',
        data,
        target: { template: { data: { amplified: '{{big}}'.repeat(REFERENCES) } } },
      },
    });
    await createManagedSecret(client(), hostileNs, {
      metadata: { name: 'oversized' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '2s',
        data,
        target: {
          template: {
            data: { one: '{{big}}'.repeat(OVERSIZED_REFERENCES), two: '{{big}}'.repeat(OVERSIZED_REFERENCES) },
          },
        },
      },
    });
    const exited = () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) return undefined;
      // A V8 heap exhaustion prints FATAL ERROR and a native stack: its first line says it all.
      const fatal = proc.lines.find((l) => l.includes('FATAL')) ?? proc.lines.slice(-3).join('\n');
      return `the operator exited (${proc.child.exitCode ?? proc.child.signalCode}) at a peak RSS of ${Math.round(peak / 2 ** 20)} MiB: ${fatal}`;
    };
    const amplified = await Promise.race([
      failureMessage(client(), hostileNs, 'amplified', 'SecretTooLarge', 60_000),
      waitFor('the operator to exit', async () => exited(), 60_000, 100).then((why) => {
        throw new Error(why);
      }),
    ]);
    expect(amplified).to.contain('--max-secret-bytes');
    const oversized = await failureMessage(client(), hostileNs, 'oversized', 'TemplateTooLarge', 30_000);
    expect(oversized).to.contain('--max-template-bytes');
    // A few refreshes (every 2 s) of both, rendering again each time.
    await sleep(5_000);
    expect(exited(), 'the operator is still running').to.equal(undefined);
    expect(await getSecret(client(), hostileNs, 'amplified')).to.equal(undefined);
    expect(await getSecret(client(), hostileNs, 'oversized')).to.equal(undefined);
    const latencyMs = await changeAndTimeSync(client(), victim, 30_000);
    expect(latencyMs, 'ms until the other namespace synced its change').to.be.below(5_000);
    const pid = proc.child.pid as number;
    const now = memoryOf(pid);
    peak = Math.max(peak, now?.hwm ?? 0);
    expect(
      peak,
      `peak RSS ${Math.round(peak / 2 ** 20)} MiB, chart limit ${chart.resources.limits.memory}`,
    ).to.be.below(memoryLimit);
  });
});
