// The signed webhook: change notifications from anything that has no queue the
// operator can poll (IBM Cloud Secrets Manager event notifications, a CI
// pipeline, a script after `aws secretsmanager put-secret-value`). It listens on
// its own port, off by default, so that exposing it (Service, NetworkPolicy)
// exposes nothing else. A notification names a store and entries:
//
//   POST /notify
//   X-Secretsync-Timestamp: <unix seconds>
//   X-Secretsync-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>">
//   {"store": {"kind": "SecretStore", "name": "vault", "namespace": "team-a"}, "keys": ["db/prod"]}
//
// The key is the operator's (a Secret in its namespace, set by the cluster
// admin), so a signed notification may name any store the operator watches:
// whoever holds the key is trusted as the admin is. A notification only makes
// the operator read the named entries again (it carries no value), so a
// forged one could at worst cost reads; it is refused anyway unless signed,
// fresh (timestamp within 5 minutes) and not seen before (its signature is
// remembered for the window). Bodies over 64 KiB, and more than a few requests
// a second from one address, are refused before any work. Answers are a bare
// status code: nothing tells a caller more than accepted or refused.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { TokenBucket } from '../kube/client.js';
import {
  IBM_EN_PATH,
  IBM_EN_WINDOW_MS,
  isForeignEvent,
  parseIbmNotification,
  tokenMatches,
  type IbmNotification,
} from './ibm-event-notifications.js';
import { errorMessage, type Logger } from '../observability/logger.js';

export const WEBHOOK_PATH = '/notify';
export const TIMESTAMP_HEADER = 'x-secretsync-timestamp';
export const SIGNATURE_HEADER = 'x-secretsync-signature';
export const MAX_BODY_BYTES = 64 * 1024;
export const REPLAY_WINDOW_MS = 5 * 60_000;
/** Entries one notification may name. */
export const MAX_KEYS = 1_000;
/** Characters of one entry name (the longest remote key any provider accepts is 2048, an ARN). */
export const MAX_KEY_LENGTH = 2_048;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** What a valid notification says. */
export interface Notification {
  store: { kind: 'SecretStore' | 'ClusterSecretStore'; name: string; namespace?: string };
  keys: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const onlyKeys = (o: Record<string, unknown>, allowed: readonly string[]) =>
  Object.keys(o).every((k) => allowed.includes(k));

/**
 * Parses a notification body; undefined for anything but exactly the shape
 * above (unknown fields, a namespace on a ClusterSecretStore or none on a
 * SecretStore, no keys, too many or too long keys, names that are not
 * Kubernetes names). Never throws.
 */
export function parseNotification(body: Buffer | string): Notification | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || !onlyKeys(parsed, ['store', 'keys'])) return undefined;
  const { store, keys } = parsed;
  if (!isObject(store) || !onlyKeys(store, ['kind', 'name', 'namespace'])) return undefined;
  const { kind, name, namespace } = store;
  if (kind !== 'SecretStore' && kind !== 'ClusterSecretStore') return undefined;
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) return undefined;
  if (kind === 'SecretStore') {
    if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace)) return undefined;
  } else if (namespace !== undefined) return undefined;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS) return undefined;
  const names: string[] = [];
  for (const k of keys as unknown[]) {
    if (typeof k !== 'string' || k.length === 0 || k.length > MAX_KEY_LENGTH) return undefined;
    names.push(k);
  }
  return {
    store: kind === 'SecretStore' ? { kind, name, namespace: namespace as string } : { kind, name },
    keys: [...new Set(names)],
  };
}

/** The signature header's value for a body: `sha256=<hex>` over `<timestamp>.<body>`. */
export function signNotification(key: Buffer, timestamp: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', key).update(`${timestamp}.`).update(body).digest('hex')}`;
}

export type Verdict = 'ok' | 'stale' | 'bad-signature';

/** Checks the timestamp (within the window, either way) and the signature, in constant time. */
export function verifySignature(
  key: Buffer,
  timestamp: string | undefined,
  signature: string | undefined,
  body: Buffer,
  nowMs: number,
  windowMs = REPLAY_WINDOW_MS,
): Verdict {
  if (timestamp === undefined || !/^[0-9]{1,12}$/.test(timestamp)) return 'stale';
  if (Math.abs(nowMs - Number(timestamp) * 1000) > windowMs) return 'stale';
  if (signature === undefined || !/^sha256=[0-9a-f]{64}$/.test(signature)) return 'bad-signature';
  const expected = Buffer.from(signNotification(key, timestamp, body));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'ok' : 'bad-signature';
}

/** Signatures seen within the window: a second delivery of the same signed request is refused. Bounded. */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs = REPLAY_WINDOW_MS,
    private readonly maxEntries = 100_000,
  ) {}

  /** Records the signature; false when it was seen within the window, or when the guard is full. */
  firstTime(signature: string, nowMs: number): boolean {
    const expiry = this.seen.get(signature);
    if (expiry !== undefined && expiry > nowMs) return false;
    if (this.seen.size >= this.maxEntries) {
      // Insertion order is expiry order (same window for all): drop the expired ones from the front.
      for (const [sig, until] of this.seen) {
        if (until > nowMs) break;
        this.seen.delete(sig);
      }
      // Still full of live signatures: refuse rather than forget one (a replay could slip through).
      if (this.seen.size >= this.maxEntries) return false;
    }
    this.seen.delete(signature);
    this.seen.set(signature, nowMs + 2 * this.windowMs);
    return true;
  }
}

/** Token buckets per source address, bounded: idle ones are dropped first. */
class SourceLimits {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxSources = 10_000,
  ) {}

  allow(source: string): boolean {
    let bucket = this.buckets.get(source);
    if (!bucket) {
      if (this.buckets.size >= this.maxSources) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      bucket = new TokenBucket(this.perSecond, this.burst);
    }
    // Most recently used last.
    this.buckets.delete(source);
    this.buckets.set(source, bucket);
    return bucket.tryTake();
  }
}

export interface WebhookOptions {
  /** HOST:PORT to listen on (port 0: any free port). */
  address: string;
  /** The HMAC key now, or undefined when its Secret is missing (then every request gets 503). */
  key(): Buffer | undefined;
  /**
   * Entries of a store changed: returns undefined when the operator does not
   * know the store, else how many ManagedSecrets it sends to sync.
   */
  notify(storeKey: string, keys: string[]): number | undefined;
  /** Whether this replica syncs (the leader): a standby answers 503 and the sender retries. */
  active(): boolean;
  /**
   * IBM Cloud Event Notifications on IBM_EN_PATH (ibm-event-notifications.ts);
   * absent: that path answers 404.
   */
  ibmEventNotifications?: {
    /** The shared token now, or undefined when its Secret is missing (then 503). */
    token(): Buffer | undefined;
    /** A fresh, first-seen notification: returns how many ManagedSecrets it sent to sync. */
    notify(notification: IbmNotification): number;
  };
  log: Logger;
  /** Counts requests by answer. */
  onAnswer?(code: number): void;
  /** Requests per second, and burst, per source address (default 5 and 20). */
  perSourceRate?: number;
  perSourceBurst?: number;
  now?: () => number;
}

/** The store's queue key, as the controller names stores. */
export function storeKeyOfNotification(n: Notification): string {
  return n.store.kind === 'ClusterSecretStore' ? `css/${n.store.name}` : `ss/${n.store.namespace}/${n.store.name}`;
}

export interface RunningWebhook {
  port: number;
  close(): Promise<void>;
}

/** Starts the webhook server. */
export async function startWebhook(options: WebhookOptions): Promise<RunningWebhook> {
  const now = options.now ?? Date.now;
  const replays = new ReplayGuard();
  const limits = new SourceLimits(options.perSourceRate ?? 5, options.perSourceBurst ?? 20);
  const answer = (res: ServerResponse, code: number) => {
    options.onAnswer?.(code);
    // Close the connection on refusals: a client that sent too much is not read further.
    res.writeHead(code, { 'content-length': '0', ...(code >= 400 ? { connection: 'close' } : {}) });
    res.end();
  };

  const ibmReplays = new ReplayGuard(IBM_EN_WINDOW_MS);
  const headerOf = (req: IncomingMessage) => (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? undefined : v;
  };

  /** The signed notification of POST /notify. */
  const handleSigned = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const key = options.key();
    if (!key || !options.active()) return answer(res, 503);
    const header = headerOf(req);
    const signature = header(SIGNATURE_HEADER);
    const verdict = verifySignature(key, header(TIMESTAMP_HEADER), signature, body, now());
    if (verdict !== 'ok' || signature === undefined) return answer(res, 401);
    if (!replays.firstTime(signature, now())) return answer(res, 401);
    const notification = parseNotification(body);
    if (!notification) return answer(res, 400);
    let synced: number | undefined;
    try {
      synced = options.notify(storeKeyOfNotification(notification), notification.keys);
    } catch (err) {
      options.log.warn('webhook notification failed', { error: errorMessage(err) });
      return answer(res, 500);
    }
    if (synced === undefined) return answer(res, 404);
    options.log.debug('webhook notification', {
      store: storeKeyOfNotification(notification),
      keys: notification.keys.length,
      managedSecrets: synced,
    });
    answer(res, 204);
  };

  /**
   * An IBM Cloud Event Notifications delivery: the token, then the time, then
   * the shape; a delivery seen before is answered 204 with no work (EN re-sends
   * the same id after a lost answer). A notification for an instance no store
   * uses, or for a secret nothing reads, is accepted and costs no read.
   */
  const handleIbm = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const ibm = options.ibmEventNotifications;
    if (!ibm) return answer(res, 404);
    const token = ibm.token();
    if (!token || !options.active()) return answer(res, 503);
    const header = headerOf(req);
    if (!tokenMatches(token, header('authorization'))) return answer(res, 401);
    const notification = parseIbmNotification(body, header);
    // Another source's event (EN's destination test): nothing to do, but not an error.
    if (!notification) return answer(res, isForeignEvent(body, header) ? 204 : 400);
    if (Math.abs(now() - notification.timeMs) > IBM_EN_WINDOW_MS) return answer(res, 401);
    if (!ibmReplays.firstTime(notification.deliveryId, now())) return answer(res, 204);
    let synced: number;
    try {
      synced = ibm.notify(notification);
    } catch (err) {
      options.log.warn('IBM Event Notifications delivery failed', { error: errorMessage(err) });
      return answer(res, 500);
    }
    options.log.debug('IBM Event Notifications delivery', {
      event: notification.event,
      secrets: notification.secrets.length,
      managedSecrets: synced,
    });
    answer(res, 204);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (!limits.allow(req.socket.remoteAddress ?? '')) return answer(res, 429);
    const path = (req.url ?? '').split('?')[0];
    const handler = path === WEBHOOK_PATH ? handleSigned : path === IBM_EN_PATH ? handleIbm : undefined;
    if (!handler || (handler === handleIbm && !options.ibmEventNotifications)) return answer(res, 404);
    if (req.method !== 'POST') return answer(res, 405);
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > MAX_BODY_BYTES) return answer(res, 413);
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        refused = true;
        answer(res, 413);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (refused) return;
      handler(req, res, Buffer.concat(chunks));
    });
  };

  const server: Server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, handle);
  server.maxHeadersCount = 50;
  const idx = options.address.lastIndexOf(':');
  const host = options.address.slice(0, idx) || '0.0.0.0';
  const port = Number(options.address.slice(idx + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host.replace(/^\[|\]$/g, ''), () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The Secret key that holds the webhook's HMAC key. */
export const WEBHOOK_SECRET_KEY = 'key';
/** The Secret key that holds the IBM Event Notifications token. */
export const IBM_EN_SECRET_KEY = 'token';

/**
 * Keeps the webhook's HMAC key from a Secret in the operator's namespace,
 * read again every `refreshMs` so that a rotated key is used without a restart.
 * The key is at least 32 bytes: a shorter one is not used (the webhook answers 503).
 */
export class WebhookKey {
  private current: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly read: () => Promise<Buffer | undefined>,
    private readonly log: Logger,
    private readonly refreshMs = 30_000,
    /** How log lines name it. */
    private readonly what = 'events webhook key',
  ) {}

  get(): Buffer | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    try {
      const key = await this.read();
      if (key && key.length < 32) {
        if (this.current !== undefined || key.length > 0)
          this.log.warn(`${this.what} is shorter than 32 bytes; the webhook refuses the requests it authenticates`);
        this.current = undefined;
        return;
      }
      if (!key && this.current)
        this.log.warn(`${this.what} Secret is gone; the webhook refuses the requests it authenticates`);
      this.current = key;
    } catch (err) {
      // Keep the key we have: the API server may be away for a moment.
      this.log.warn(`could not read the ${this.what}`, { error: errorMessage(err) });
    }
  }
}

/** What runEventsWebhook needs of the operator. */
export interface WebhookOperator {
  notifyChanged(storeKey: string, keys: readonly string[], source: string): number | undefined;
  /** An IBM Cloud Event Notifications delivery: the ManagedSecrets of every store of that instance that read its secrets sync. */
  notifyIbmSecrets(notification: IbmNotification): number;
  isLeader(): boolean;
  readonly client: { get<T>(path: string): Promise<T> };
}

/**
 * Starts the webhook on `port` with its key from Secret `secretName` (key
 * `key`) in the operator's namespace; the returned close stops both.
 */
export async function runEventsWebhook(
  operator: WebhookOperator,
  settings: {
    port: number;
    host?: string;
    namespace: string;
    secretName: string;
    /** The Secret (key `token`) that authenticates IBM Cloud Event Notifications; absent: that path is off. */
    ibmEventNotificationsSecret?: string;
    log: Logger;
    onAnswer?(code: number): void;
  },
): Promise<RunningWebhook> {
  const secretValue = (name: string, dataKey: string) => async () => {
    try {
      const secret = await operator.client.get<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${settings.namespace}/secrets/${name}`,
      );
      const value = secret.data?.[dataKey];
      return value === undefined ? undefined : Buffer.from(value, 'base64');
    } catch (err) {
      if ((err as { status?: number }).status === 404) return undefined;
      throw err;
    }
  };
  const key = new WebhookKey(secretValue(settings.secretName, WEBHOOK_SECRET_KEY), settings.log);
  await key.start();
  const ibmSecret = settings.ibmEventNotificationsSecret;
  const ibmToken = ibmSecret
    ? new WebhookKey(secretValue(ibmSecret, IBM_EN_SECRET_KEY), settings.log, 30_000, 'IBM Event Notifications token')
    : undefined;
  await ibmToken?.start();
  if (ibmToken && !ibmToken.get())
    settings.log.warn('IBM Event Notifications token missing: its deliveries are refused until it exists', {
      secret: `${settings.namespace}/${ibmSecret}`,
      key: IBM_EN_SECRET_KEY,
    });
  if (!key.get())
    settings.log.warn('events webhook key missing: every request is refused until it exists', {
      secret: `${settings.namespace}/${settings.secretName}`,
      key: WEBHOOK_SECRET_KEY,
    });
  const server = await startWebhook({
    address: `${settings.host ?? '0.0.0.0'}:${settings.port}`,
    key: () => key.get(),
    notify: (storeKey, keys) => operator.notifyChanged(storeKey, keys, 'webhook'),
    active: () => operator.isLeader(),
    ...(ibmToken
      ? {
          ibmEventNotifications: {
            token: () => ibmToken.get(),
            notify: (notification: IbmNotification) => operator.notifyIbmSecrets(notification),
          },
        }
      : {}),
    log: settings.log,
    onAnswer: settings.onAnswer,
  });
  settings.log.info('serving the events webhook', {
    port: server.port,
    paths: ibmToken ? [WEBHOOK_PATH, IBM_EN_PATH] : [WEBHOOK_PATH],
  });
  return {
    port: server.port,
    close: async () => {
      key.stop();
      ibmToken?.stop();
      await server.close();
    },
  };
}
