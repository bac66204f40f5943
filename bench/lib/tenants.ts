// What a noisy or hostile namespace puts in front of the operator, for the
// noisy-neighbour and hostile scenarios: ManagedSecrets that fail (keys that do
// not exist; stores whose endpoint accepts connections and never answers, so a
// sync holds its worker until the provider's timeouts give up), and ManagedSecrets
// that ask for a refresh far below the admin's floor.
import { createServer, type Socket } from 'node:net';
import { API_VERSION, type ManagedSecret } from '../../src/api/types.js';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { Informer } from '../../src/kube/informer.js';
import type { BenchContext } from './context.js';
import { localSpec, msPath, storePath } from './fixtures.js';
import { pool, range } from './util.js';

const AWS_CREDS = 'aws-creds';

/** An endpoint that accepts connections, reads what comes, and never answers. */
export interface HangingServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Connections accepted so far. */
  readonly hits: number;
  /** Connections open now: each is a request some sync is waiting on (a worker it holds). */
  readonly open: number;
  close(): Promise<void>;
}

export async function hangingServer(): Promise<HangingServer> {
  const sockets = new Set<Socket>();
  let hits = 0;
  const server = createServer((socket) => {
    hits++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return hits;
    },
    get open() {
      return sockets.size;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * `count` Secrets Manager SecretStores `hang-0` … named at `endpoint` (one that
 * never answers), each with static credentials. Each store has its own circuit
 * breaker in the operator, so several stores keep workers waiting for longer
 * than one whose breaker opened after three failed calls.
 */
export async function hangingStores(ctx: BenchContext, namespace: string, endpoint: string, count: number): Promise<void> {
  await ctx.kube.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: AWS_CREDS },
      stringData: { 'access-key-id': 'bench', 'secret-access-key': 'bench' },
    },
  });
  await pool(range(count), ctx.options.createConcurrency, async (s) => {
    await ctx.kube.request('POST', storePath(namespace), {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: `hang-${s}` },
        spec: {
          provider: {
            awsSecretsManager: {
              region: 'us-east-1',
              endpoint,
              auth: {
                secretRef: {
                  accessKeyIdSecretRef: { name: AWS_CREDS, key: 'access-key-id' },
                  secretAccessKeySecretRef: { name: AWS_CREDS, key: 'secret-access-key' },
                },
              },
            },
          },
        },
      },
    });
  });
}

export interface NoisyMix {
  /** ManagedSecrets that fail: even ones name a missing local-store key, odd ones a hanging store (when there are any). */
  failing: number;
  /** Hanging stores `hang-0` … the odd failing ones use, round-robin (0: all failing ones miss a key). */
  hangingStores: number;
  /** ManagedSecrets on existing entries 0 … floor-1 of the namespace's local store with `refreshInterval: 1ms`. */
  floor: number;
}

/**
 * The noisy ManagedSecrets of `mix` (`<failingPrefix>-<i>`, `floor-<i>`), created
 * `createConcurrency` at a time; `only` creates just the failing ones on a
 * missing key (and the floor ones) or just those on a hanging store.
 */
export async function createNoisyManagedSecrets(
  ctx: BenchContext,
  namespace: string,
  mix: NoisyMix,
  only?: 'missing' | 'hanging',
  failingPrefix = 'noisy',
): Promise<void> {
  const specs: { name: string; spec: ManagedSecret['spec'] }[] = [];
  for (let i = 0; i < mix.failing; i++) {
    const hanging = mix.hangingStores > 0 && i % 2 === 1;
    if (only !== undefined && (only === 'hanging') !== hanging) continue;
    specs.push({
      name: `${failingPrefix}-${i}`,
      spec: hanging
        ? {
            storeRef: { name: `hang-${i % mix.hangingStores}` },
            refreshInterval: '1h',
            data: [{ secretKey: 'v', remoteRef: { key: `noisy/${i}` } }],
          }
        : {
            storeRef: { name: 'local' },
            refreshInterval: '1h',
            data: [{ secretKey: 'v', remoteRef: { key: `missing/${i}`, property: 'a' } }],
          },
    });
  }
  if (only !== 'hanging')
    for (let i = 0; i < mix.floor; i++) specs.push({ name: `floor-${i}`, spec: localSpec(i, '1ms') });
  await createObjects(ctx, namespace, specs);
}

/** ManagedSecrets by name and spec, created `createConcurrency` at a time. */
export async function createObjects(
  ctx: BenchContext,
  namespace: string,
  specs: readonly { name: string; spec: ManagedSecret['spec'] }[],
): Promise<void> {
  await pool(specs, ctx.options.createConcurrency, async ({ name, spec }) => {
    await ctx.kube.request('POST', msPath(namespace), {
      body: { apiVersion: API_VERSION, kind: 'ManagedSecret', metadata: { name }, spec },
    });
  });
}

/**
 * Watches a namespace's ManagedSecrets and counts them by the reason of their
 * Ready condition (`(none)` before the first status): what the operator made
 * of each kind of hostile object. Drops specs as they arrive (some are 1 MiB).
 */
export class ReasonCensus {
  private readonly informer: Informer<ManagedSecret & KubeObject>;

  constructor(kube: KubeClient, namespace: string) {
    this.informer = new Informer<ManagedSecret & KubeObject>(kube, {
      path: msPath(namespace),
      transform: (o) => {
        const ms = o as ManagedSecret & KubeObject;
        return {
          ...ms,
          metadata: { name: ms.metadata.name, namespace: ms.metadata.namespace },
          spec: { storeRef: ms.spec.storeRef },
        } as ManagedSecret & KubeObject;
      },
    });
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  /** Count by "<name prefix> <Ready status> <reason>", e.g. `regex True Synced`. */
  byKind(prefixOf: (name: string) => string = (name) => name.replace(/-\d+$/, '')): Record<string, number> {
    const out: Record<string, number> = {};
    for (const ms of this.informer.list()) {
      const ready = (ms.status?.conditions ?? []).find((c) => c.type === 'Ready');
      const key = `${prefixOf(ms.metadata.name)} ${ready ? `${ready.status} ${ready.reason}` : '(none)'}`;
      out[key] = (out[key] ?? 0) + 1;
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  }

  /** ManagedSecrets whose names `match` that have a Ready condition. */
  withStatus(match: (name: string) => boolean): number {
    let n = 0;
    for (const ms of this.informer.list())
      if (match(ms.metadata.name) && (ms.status?.conditions ?? []).some((c) => c.type === 'Ready')) n++;
    return n;
  }
}
