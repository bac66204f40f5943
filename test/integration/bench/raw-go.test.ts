// The raw-go benchmark (issue 18's client-go and HTTP/2 baselines) at a small N
// against the suite's control plane: tools/kube-rawclient really creates the
// Secrets it counts, over the protocol it is told, and the scenario's ratios
// are computed against its fastest client-go run.
import { expect } from 'chai';
import {
  adminKube,
  benchNamespace,
  defaultOptions,
  ensureNamespace,
  type BenchContext,
  type Figures,
} from '../../../bench/lib/context.js';
import { createWithClientGo, http2Session, runRawGo } from '../../../bench/scenarios/raw-go.js';
import { loadKubeConfig } from '../../../src/kube/config.js';
import type { KubeList, KubeObject } from '../../../src/kube/client.js';
import { sharedCluster } from '../env.js';

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

describe('bench: raw-go (client-go and HTTP/2 baselines)', function () {
  // The first use builds tools/kube-rawclient (seconds once the control plane's modules are compiled).
  this.timeout(6 * 60_000);
  const kube = () => adminKube(sharedCluster());
  const rawSecrets = async (namespace: string) =>
    (
      await kube().get<KubeList<SecretObject>>(`/api/v1/namespaces/${namespace}/secrets`, {
        labelSelector: 'bench.secretsync.io/raw=true',
      })
    ).items;

  it('client-go creates the N Secrets over HTTP/2 on one connection, and over HTTP/1.1 on several with --http1', async () => {
    const namespace = benchNamespace('raw-go-test');
    await ensureNamespace(kube(), namespace);
    const path = sharedCluster().kubeconfigPath;

    const h2 = await createWithClientGo(path, namespace, 30, { concurrency: 8, http1: false, prefix: 'h2' });
    expect(h2).to.include({ client: 'client-go', protocol: 'HTTP/2.0', created: 30, non201: 0 });
    // HTTP/2 multiplexes every request onto a single connection.
    expect(h2.connections).to.equal(1);
    expect(h2.secretsPerSecond).to.be.greaterThan(0);
    expect(h2.p99Ms).to.be.at.least(h2.p50Ms);

    const h1 = await createWithClientGo(path, namespace, 30, { concurrency: 8, http1: true, prefix: 'h1' });
    expect(h1).to.include({ protocol: 'HTTP/1.1', created: 30 });
    // HTTP/1.1 needs a connection per request in flight.
    expect(h1.connections).to.be.greaterThan(1);

    const secrets = await rawSecrets(namespace);
    expect(secrets.map((s) => s.metadata.name).sort()).to.deep.equal(
      [...Array.from({ length: 30 }, (_, i) => `h1-${i}`), ...Array.from({ length: 30 }, (_, i) => `h2-${i}`)].sort(),
    );
    // The same bodies as raw-baseline: three keys, and the label.
    for (const s of secrets) expect(Object.keys(s.data ?? {}).sort()).to.deep.equal(['a', 'b', 'c']);
  });

  it('kube-rawclient fails, naming the cause, when the API server refuses the creates', async () => {
    const missing = benchNamespace('raw-go-missing');
    const err = await createWithClientGo(sharedCluster().kubeconfigPath, missing, 5, {
      concurrency: 2,
      http1: false,
      prefix: 'x',
    }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: number; stderr?: string },
    );
    expect(err, 'creates into a missing namespace must fail').to.not.equal(undefined);
    expect(err?.code).to.equal(1);
    expect(err?.stderr).to.match(/created 0 of 5 Secrets, then: .*not found/);
  });

  it('the API server accepts h2 from node:http2', async () => {
    const { session } = await http2Session(await loadKubeConfig(sharedCluster().kubeconfigPath));
    try {
      expect(session.alpnProtocol).to.equal('h2');
    } finally {
      session.close();
    }
  });

  it('runs every client, reports each, cleans up, and gives cold-sync as a fraction of the fastest client-go run', async () => {
    const ctx: BenchContext = {
      cluster: sharedCluster(),
      kube: kube(),
      moto: () => Promise.reject(new Error('raw-go needs no AWS')),
      options: { ...defaultOptions(), operatorConcurrency: 4 },
      log: () => undefined,
      // Figures of earlier scenarios in the same run, as the runner keeps them.
      results: new Map<string, Figures>([
        ['cold-sync', { syncsPerSecond: 10, syncsPerSecondAfterStart: 12 }],
        ['raw-baseline', { secretsPerSecond: 5 }],
      ]),
    };
    const f = await runRawGo(ctx, 40, { clientGoConcurrency: [8], nodeConcurrency: [8] });
    const perSecond = f.secretsPerSecond as Record<string, number>;
    expect(Object.keys(perSecond).sort()).to.deep.equal(
      [
        'client-go h2 x4',
        'client-go h2 x8',
        'client-go http/1.1 x4',
        'client-go http/1.1 x8',
        'KubeClient http/1.1 x4',
        'KubeClient http/1.1 x8',
        'node:http2 h2 x4',
        'node:http2 h2 x8',
      ].sort(),
    );
    for (const [run, value] of Object.entries(perSecond)) {
      expect(value, run).to.be.greaterThan(0);
      // The printed table's line for the run: its rate, and the load around it.
      expect(f[`run ${run}`], run).to.match(new RegExp(`^${value}/s p50 .* ms.*, load [\\d.]+→[\\d.]+$`));
    }
    const best = f.bestClientGoSecretsPerSecond as number;
    expect(best).to.equal(
      Math.max(
        ...Object.entries(perSecond)
          .filter(([k]) => k.startsWith('client-go'))
          .map(([, v]) => v),
      ),
    );
    expect(perSecond[f.bestClientGo as string]).to.equal(best);
    expect(f.alpn).to.equal('h2');
    expect(f.kubeClientSecretsPerSecond).to.equal(perSecond['KubeClient http/1.1 x4']);
    expect(f.nodeHttp2SecretsPerSecond).to.equal(perSecond['node:http2 h2 x4']);
    expect(f.coldSyncRatio).to.be.closeTo(10 / best, 0.001);
    expect(f.coldSyncRatioAfterStart).to.be.closeTo(12 / best, 0.001);
    expect(f.rawBaselineRatio).to.be.closeTo(5 / best, 0.001);
    // Each run's Secrets are deleted before the next, and the last ones too.
    expect(await rawSecrets(f.namespace as string)).to.have.length(0);
  });
});
