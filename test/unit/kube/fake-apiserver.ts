import { KubeConfig } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient, type ClientOptions, type KubeObject } from '../../../src/kube/client.js';

interface Watcher {
  collection: string;
  res: ServerResponse;
  resourceVersion: string | null;
  labelSelector: string | null;
}

/** A request the server held without answering, and when the client gave up on it. */
export interface HungRequest {
  method: string;
  path: string;
  at: number;
  closedAt?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** When it arrived (ms). */
  at: number;
}

/**
 * A tiny in-process stand-in for the API server, for our own KubeClient: list
 * (with resourceVersion), watch streams of JSON lines, get, create (POST) and
 * update (PUT, compare-and-swap on metadata.resourceVersion) and delete (with an
 * optional resourceVersion precondition) of named objects.
 * Collections are whatever paths objects are put under; nothing is validated.
 */
export class FakeApiServer {
  private readonly server: Server;
  private readonly collections = new Map<string, Map<string, KubeObject>>();
  private readonly watchers = new Set<Watcher>();
  private revision = 1;
  readonly requests: RecordedRequest[] = [];
  /** Milliseconds to hold back the answer to writes (POST, PUT), to open race windows. */
  writeDelayMs = 0;
  /** Answer every request under a path with this prefix with HTTP `failStatus` while set. */
  failPrefix: string | undefined;
  /** Never answer requests this returns true for (the client has to give up); each is kept in `hung`. */
  hangWhen: ((method: string, path: string) => boolean) | undefined;
  readonly hung: HungRequest[] = [];
  failStatus = 500;
  /** Headers of those failure answers (say, Retry-After). */
  failHeaders: Record<string, string> = {};
  /** Never answer requests under a path with this prefix while set (a hanging server). */
  stallPrefix: string | undefined;
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.status(res, 500, 'InternalError', String(err));
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A KubeClient for this server (plain HTTP, no credentials). */
  client(options: ClientOptions = {}): KubeClient {
    return new KubeClient(this.auth(), options);
  }

  /** Where the server is, for code that builds its own KubeClient. */
  auth(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'fake' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  get resourceVersion(): string {
    return String(this.revision);
  }

  /** Open watch streams on a collection. */
  watchCount(collection: string): number {
    return [...this.watchers].filter((w) => w.collection === collection).length;
  }

  get(collection: string, name: string): KubeObject | undefined {
    const obj = this.collections.get(collection)?.get(name);
    return obj ? structuredClone(obj) : undefined;
  }

  /** Creates or replaces an object, bumping its resourceVersion; watchers see it unless `silently`. */
  put(collection: string, obj: KubeObject, silently = false): KubeObject {
    const items = this.items(collection);
    const previous = items.get(obj.metadata.name);
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.revision);
    items.set(obj.metadata.name, stored);
    if (!silently) this.broadcast(collection, previous ? 'MODIFIED' : 'ADDED', stored, previous);
    return structuredClone(stored);
  }

  /** Removes an object; watchers see it unless `silently`. */
  remove(collection: string, name: string, silently = false): void {
    const items = this.items(collection);
    const obj = items.get(name);
    if (!obj) return;
    items.delete(name);
    const gone = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.revision) } };
    if (!silently) this.broadcast(collection, 'DELETED', gone);
  }

  /** Sends a BOOKMARK at the current resourceVersion to the collection's watchers. */
  bookmark(collection: string): void {
    this.broadcast(collection, 'BOOKMARK', { metadata: { name: '', resourceVersion: this.resourceVersion } });
  }

  /** Ends the collection's watch streams with a 410 Gone ERROR event, as when the version expired. */
  expireWatches(collection: string): void {
    for (const w of [...this.watchers]) {
      if (w.collection !== collection) continue;
      w.res.write(
        `${JSON.stringify({
          type: 'ERROR',
          object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 },
        })}\n`,
      );
      w.res.end();
      this.watchers.delete(w);
    }
  }

  /** Ends the collection's watch streams normally, as the server does when a watch times out. */
  endWatches(collection: string): void {
    for (const w of [...this.watchers]) {
      if (w.collection !== collection) continue;
      w.res.end();
      this.watchers.delete(w);
    }
  }

  /** Makes an empty collection exist, so it can be listed and watched. */
  declare(collection: string): void {
    this.items(collection);
  }

  private items(collection: string): Map<string, KubeObject> {
    let items = this.collections.get(collection);
    if (!items) {
      items = new Map();
      this.collections.set(collection, items);
    }
    return items;
  }

  /** As the API server does for a label-selected watch: a change that leaves the selection is DELETED there, one that enters it ADDED. */
  private broadcast(collection: string, type: string, object: KubeObject, previous?: KubeObject): void {
    for (const w of this.watchers) {
      if (w.collection !== collection) continue;
      let seen = type;
      if (type !== 'BOOKMARK') {
        const now = selects(w.labelSelector, object);
        const before = previous !== undefined && selects(w.labelSelector, previous);
        if (type === 'MODIFIED') seen = now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : '';
        else if (!now) seen = '';
      }
      if (seen) w.res.write(`${JSON.stringify({ type: seen, object })}\n`);
    }
  }

  private status(
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(code, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.searchParams, at: Date.now() });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as KubeObject) : undefined;

    if (this.stallPrefix !== undefined && url.pathname.startsWith(this.stallPrefix)) return;
    if (this.failPrefix !== undefined && url.pathname.startsWith(this.failPrefix)) {
      this.status(res, this.failStatus, 'InternalError', 'injected failure', this.failHeaders);
      return;
    }
    if (this.hangWhen?.(method, url.pathname)) {
      const hung: HungRequest = { method, path: url.pathname, at: Date.now() };
      this.hung.push(hung);
      res.on('close', () => (hung.closedAt = Date.now()));
      return;
    }
    if ((method === 'POST' || method === 'PUT') && this.writeDelayMs > 0)
      await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));

    const path = url.pathname;
    if (method === 'GET' && this.collections.has(path) && url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      const watcher: Watcher = {
        collection: path,
        res,
        resourceVersion: url.searchParams.get('resourceVersion'),
        labelSelector: url.searchParams.get('labelSelector'),
      };
      this.watchers.add(watcher);
      res.on('close', () => this.watchers.delete(watcher));
      return;
    }
    if (method === 'GET' && this.collections.has(path)) {
      const selector = url.searchParams.get('labelSelector');
      const items = [...(this.collections.get(path)?.values() ?? [])].filter((o) => selects(selector, o));
      this.json(res, 200, { metadata: { resourceVersion: this.resourceVersion }, items });
      return;
    }
    if (method === 'POST') {
      if (!body) return this.status(res, 400, 'BadRequest', 'no body');
      if (this.collections.get(path)?.has(body.metadata.name)) {
        return this.status(res, 409, 'AlreadyExists', `${body.metadata.name} already exists`);
      }
      this.json(res, 201, this.put(path, body));
      return;
    }
    const slash = path.lastIndexOf('/');
    const collection = path.slice(0, slash);
    const name = path.slice(slash + 1);
    const current = this.collections.get(collection)?.get(name);
    if (method === 'GET') {
      if (!current) return this.status(res, 404, 'NotFound', `${name} not found`);
      this.json(res, 200, current);
      return;
    }
    if (method === 'PUT') {
      if (!current) return this.status(res, 404, 'NotFound', `${name} not found`);
      if (!body) return this.status(res, 400, 'BadRequest', 'no body');
      if (body.metadata.resourceVersion !== current.metadata.resourceVersion) {
        return this.status(res, 409, 'Conflict', 'the object has been modified');
      }
      this.json(res, 200, this.put(collection, body));
      return;
    }
    if (method === 'DELETE') {
      if (!current) return this.status(res, 404, 'NotFound', `${name} not found`);
      const preconditions = (body as { preconditions?: { resourceVersion?: string } } | undefined)?.preconditions;
      if (
        preconditions?.resourceVersion !== undefined &&
        preconditions.resourceVersion !== current.metadata.resourceVersion
      )
        return this.status(res, 409, 'Conflict', 'the object has been modified');
      this.remove(collection, name);
      this.json(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      return;
    }
    this.status(res, 405, 'MethodNotAllowed', `${method} ${path}`);
  }
}

/** Equality-based label selectors only (`a=b,c=d`), which is all the operator's informers use here. */
function selects(selector: string | null, obj: KubeObject): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [key, value] = term.split('=');
    if (key === undefined || value === undefined) throw new Error(`fake API server: unsupported selector ${term}`);
    return obj.metadata.labels?.[key.trim()] === value.trim();
  });
}
