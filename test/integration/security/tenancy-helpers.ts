// Shared pieces of the tenancy security tests (what a namespaced store or a
// noisy namespace can make the operator do): a fake AWS endpoint on 127.0.0.1
// that records every request it gets (the SSRF target, or a store endpoint
// that misbehaves), and waits on the conditions the operator writes. Only
// helpers that the code before the fixes also has are imported, so each test
// can be run against it to show how it failed there.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { API_VERSION, type Condition, type ManagedSecret } from '../../../src/api/types.js';
import type { KubeClient } from '../../../src/kube/client.js';
import { waitFor } from '../../../tools/testenv/index.js';
import { getManagedSecret, readyOf } from '../operator.js';

/** One request the fake endpoint received. */
export interface RecordedRequest {
  method: string;
  url: string;
  /** The `X-Amz-Target` header (`secretsmanager.GetSecretValue`), when there was one. */
  target: string;
  body: string;
}

export interface FakeAwsEndpoint {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request so far, in arrival order. */
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** How the fake answers one request: status, body and headers. */
export type FakeAnswer = { status: number; body: string; headers?: Record<string, string> };

/**
 * An HTTP server on 127.0.0.1 that records every request and answers with
 * `answer(request)`. `secretsManagerAnswer` below makes it a Secrets Manager
 * that serves one value for every key.
 */
export async function fakeAwsEndpoint(answer: (req: RecordedRequest) => FakeAnswer): Promise<FakeAwsEndpoint> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        target: String(req.headers['x-amz-target'] ?? ''),
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const { status, body, headers } = answer(recorded);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...headers });
      res.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Secrets Manager's answers (JSON 1.1 protocol), every key holding `value`. */
export function secretsManagerAnswer(value: string): (req: RecordedRequest) => FakeAnswer {
  const entry = (name: string) => ({
    ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`,
    Name: name,
    VersionId: '00000000-0000-0000-0000-000000000001',
    SecretString: value,
    VersionStages: ['AWSCURRENT'],
    CreatedDate: 1_700_000_000,
  });
  return (req) => {
    const input = (req.body ? JSON.parse(req.body) : {}) as { SecretId?: string; SecretIdList?: string[] };
    switch (req.target) {
      case 'secretsmanager.GetSecretValue':
        return { status: 200, body: JSON.stringify(entry(input.SecretId ?? 'x')) };
      case 'secretsmanager.BatchGetSecretValue':
        return {
          status: 200,
          body: JSON.stringify({ SecretValues: (input.SecretIdList ?? []).map(entry), Errors: [] }),
        };
      case 'secretsmanager.ListSecrets':
        return { status: 200, body: JSON.stringify({ SecretList: [] }) };
      default:
        return {
          status: 400,
          body: JSON.stringify({ __type: 'InvalidRequestException', message: `not faked: ${req.target}` }),
        };
    }
  };
}

/** Static AWS keys for stores in `namespace`, in the Secret `aws-creds`. */
export async function createAwsCreds(client: KubeClient, namespace: string): Promise<void> {
  await client.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'aws-creds' },
      stringData: { 'access-key-id': 'testing', 'secret-access-key': 'testing' },
    },
  });
}

/** The `auth` of a store reading `aws-creds` (from `namespace`, for a ClusterSecretStore). */
export function awsCredsAuth(namespace?: string): Record<string, unknown> {
  const ns = namespace !== undefined ? { namespace } : {};
  return {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id', ...ns },
      secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key', ...ns },
    },
  };
}

export async function createStore(
  client: KubeClient,
  namespace: string,
  name: string,
  provider: Record<string, unknown>,
): Promise<void> {
  await client.request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
    body: { apiVersion: API_VERSION, kind: 'SecretStore', metadata: { name }, spec: { provider } },
  });
}

/**
 * Waits until the operator has recorded an outcome for this generation of the
 * ManagedSecret (a Ready condition, whatever it says): a test then asserts
 * what it says, so that a wrong outcome fails with the outcome rather than a
 * timeout. `notReason` skips outcomes on the way (a first failure that is
 * retried).
 */
export async function waitForOutcome(
  client: KubeClient,
  namespace: string,
  name: string,
  timeoutMs = 20_000,
  accept: (ready: Condition) => boolean = () => true,
): Promise<ManagedSecret> {
  return waitFor(
    `ManagedSecret ${namespace}/${name} to have a Ready condition`,
    async () => {
      const ms = await getManagedSecret(client, namespace, name);
      const ready = readyOf(ms);
      return ready && ms.status?.observedGeneration === ms.metadata.generation && accept(ready) ? ms : undefined;
    },
    timeoutMs,
    100,
  );
}

/** The Ready condition of a SecretStore (or, without a namespace, a ClusterSecretStore), once it has one `accept` takes. */
export async function waitForStoreReady(
  client: KubeClient,
  namespace: string | undefined,
  name: string,
  timeoutMs = 20_000,
  accept: (ready: Condition) => boolean = () => true,
): Promise<Condition> {
  const path =
    namespace === undefined
      ? `/apis/${API_VERSION}/clustersecretstores/${name}`
      : `/apis/${API_VERSION}/namespaces/${namespace}/secretstores/${name}`;
  return waitFor(
    `store ${namespace ?? ''}/${name} to have a Ready condition`,
    async () => {
      const store = await client.get<{ status?: { conditions?: Condition[] } }>(path);
      const ready = store.status?.conditions?.find((c) => c.type === 'Ready');
      return ready && accept(ready) ? ready : undefined;
    },
    timeoutMs,
    100,
  );
}

/** A TCP server on 127.0.0.1 that accepts every connection, reads the request and never answers. */
export async function hangingTcpEndpoint(): Promise<{ url: string; connections(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs `work` over `items`, at most `limit` at a time. */
export async function inPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
      }
    }),
  );
}

/** The sum of a counter's values whose labels all match `labels` (a value may be a RegExp). */
export async function counterSum(
  counter: { get(): Promise<{ values: { value: number; labels: Record<string, string | number | undefined> }[] }> },
  labels: Record<string, string | RegExp> = {},
): Promise<number> {
  let sum = 0;
  for (const { value, labels: have } of (await counter.get()).values) {
    const matches = Object.entries(labels).every(([k, v]) =>
      typeof v === 'string' ? have[k] === v : v.test(String(have[k] ?? '')),
    );
    if (matches) sum += value;
  }
  return sum;
}
