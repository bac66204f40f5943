// A contract server for IBM Cloud Secrets Manager v2 and the IBM Cloud IAM
// token endpoint. These machines reach no cloud and IBM ships no local
// Secrets Manager, so the ibmSecretsManager provider is tested against this
// server: it implements the part of the documented API the provider uses and
// enforces what the documentation says (bearer authentication with expiring
// IAM tokens, 404 for unknown secrets and versions, 409 for a second secret of
// the same name, type and group, 404 for an unknown secret group on create,
// offset/limit paging with total_count), and it
// records every request so tests can assert how many calls a sync made.
//
// Reference followed, field by field: IBM Cloud Secrets Manager API v2
// (cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2), as generated
// into IBM/secrets-manager-go-sdk secretsmanagerv2/secrets_manager_v2.go
// (commit 5f4fa96, July 2026): request paths, list query parameters
// (offset, limit, sort, search, groups, secret_types, match_all_labels),
// the secret and version models (payload, username/password, data,
// certificate/intermediate/private_key, issuing_ca/ca_chain, credentials,
// api_key, version_custom_metadata, alias, payload_available), and the IAM
// token API (cloud.ibm.com/apidocs/iam-identity-token-api: POST
// /identity/token, form-encoded, grant types
// urn:ibm:params:oauth:grant-type:apikey and
// urn:ibm:params:oauth:grant-type:cr-token with profile_id or profile_name;
// access_token, refresh_token, token_type, expires_in, expiration).
//
// Event Notifications: when a destination is set (`notifyTo`), the server
// POSTs what IBM Cloud Event Notifications delivers to a webhook destination
// after a secret is created, gets a new version (by a client or by the
// service's own rotation) or is deleted: a structured CloudEvent (id, source =
// the instance CRN, specversion 1.0, type com.ibm.cloud.secrets-manager.<event>,
// time, data) whose data is Secrets Manager's documented notification payload
// (event_type, secret_type, secrets[] with secret_id, secret_name,
// secret_group_id, event_time, event_triggered_by; source_instance_crn and the
// instance URLs), with the destination's custom headers. Simpler than the
// service: one notification per change, sent at once (Secrets Manager batches
// its pending events every 1 to 2 minutes, up to 100 secrets each), not retried.
//
// Where this server is simpler than the service (said so it is not mistaken
// for the real thing): access tokens are HMAC-signed by a key shared by the
// servers of one test, not RS256 with IAM's published keys; a cr-token's
// signature is not verified (the subject is matched against the trusted
// profile's rule, as IAM does after verifying it against the cluster's issuer);
// IAM access policies are reduced to a per-identity deny list (403); only the
// current and previous version keep their payload (payload_available), as the
// documentation says of secrets Secrets Manager versions.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export const GRANT_APIKEY = 'urn:ibm:params:oauth:grant-type:apikey';
export const GRANT_CR_TOKEN = 'urn:ibm:params:oauth:grant-type:cr-token';

export const SECRET_TYPES = [
  'arbitrary',
  'username_password',
  'kv',
  'iam_credentials',
  'imported_cert',
  'public_cert',
  'private_cert',
  'service_credentials',
] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

/** The payload fields of a version, by secret type (the JSON the API returns beside the metadata). */
export type Payload = Record<string, unknown>;

/** The payload fields each type carries; anything else in a create or version body is ignored. */
const PAYLOAD_FIELDS: Record<SecretType, string[]> = {
  arbitrary: ['payload'],
  username_password: ['username', 'password'],
  kv: ['data'],
  iam_credentials: ['api_key', 'api_key_id', 'service_id'],
  imported_cert: ['certificate', 'intermediate', 'private_key'],
  public_cert: ['certificate', 'intermediate', 'private_key'],
  private_cert: ['certificate', 'issuing_ca', 'ca_chain', 'private_key'],
  service_credentials: ['credentials'],
};

/** The payload fields a create must carry, for the types whose value the client gives (IBM's prototypes mark them required). */
const REQUIRED_ON_CREATE: Partial<Record<SecretType, string[]>> = {
  arbitrary: ['payload'],
  username_password: ['username', 'password'],
  kv: ['data'],
  imported_cert: ['certificate'],
};

/** Types whose new versions a client may create with POST /versions (the others are rotated by the service). */
const CLIENT_VERSIONED = new Set<SecretType>(['arbitrary', 'username_password', 'kv', 'imported_cert']);

interface StoredVersion {
  id: string;
  created_at: string;
  created_by: string;
  payload: Payload;
  version_custom_metadata: Record<string, unknown>;
}

interface StoredSecret {
  id: string;
  name: string;
  secret_type: SecretType;
  secret_group_id: string;
  labels: string[];
  description?: string;
  custom_metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  created_by: string;
  /** Oldest first. */
  versions: StoredVersion[];
}

interface SecretGroup {
  id: string;
  name: string;
  description?: string;
  created_at: string;
  updated_at: string;
}

/** One request as the server saw it (no bodies: they carry secret values). */
export interface RecordedRequest {
  method: string;
  /** The path without the query. */
  path: string;
  query: Record<string, string>;
  status: number;
  /** The IAM identity of the bearer token, when it was valid. */
  iamId?: string;
}

/** An answer the next matching requests get instead of the real one (throttling, outages). */
export interface InjectedFault {
  status: number;
  /** How many requests get it. */
  times: number;
  headers?: Record<string, string>;
  /** Only requests whose path starts with this (default: every /api/ request). */
  pathPrefix?: string;
  /** Wait this long before answering (a hung instance); with status 0 the real answer follows the wait. */
  delayMs?: number;
}

export interface ContractServerOptions {
  /** Shared by the servers of one test, so a token from one IAM is accepted by every instance. */
  signingKey: string;
  /** Seconds an access token lives (IAM: 3600). */
  tokenLifetimeSeconds?: number;
  /** Instance id, in CRNs and the service URL. */
  instanceId?: string;
  region?: string;
}

interface TrustedProfile {
  id: string;
  name: string;
  /** The cr-token subject allowed to use it: `system:serviceaccount:<namespace>:<name>`. */
  subject: string;
  iamId: string;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * One Secrets Manager instance and (optionally) the IAM token endpoint, on
 * 127.0.0.1. Its state lives in memory; `close()` and `listen()` again on the
 * same port keep it (an outage, then a recovery).
 */
export class IbmSecretsManagerContract {
  readonly requests: RecordedRequest[] = [];
  private readonly secrets = new Map<string, StoredSecret>();
  private readonly groups = new Map<string, SecretGroup>();
  private readonly apiKeys = new Map<string, string>();
  private readonly profiles: TrustedProfile[] = [];
  private readonly denied = new Set<string>();
  private readonly faults: InjectedFault[] = [];
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private readonly now: () => number = Date.now;
  readonly instanceId: string;
  readonly region: string;
  tokenLifetimeSeconds: number;

  constructor(private readonly options: ContractServerOptions) {
    this.instanceId = options.instanceId ?? randomUUID();
    this.region = options.region ?? 'us-south';
    this.tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
    const at = new Date().toISOString();
    this.groups.set('default', { id: 'default', name: 'default', created_at: at, updated_at: at });
  }

  /** Listens on 127.0.0.1 (port 0: any free port); returns the port. */
  async listen(port = 0): Promise<number> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  /** Stops answering: open connections are cut, new ones refused. State stays. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- test set-up (what an account administrator does in the console) ----

  /** An API key that IAM exchanges for a token of this identity. */
  addApiKey(apiKey: string, iamId = `iam-ServiceId-${randomUUID()}`): string {
    this.apiKeys.set(apiKey, iamId);
    return iamId;
  }

  /** A trusted profile a compute resource (a ServiceAccount) may log in as with a cr-token. */
  addTrustedProfile(profile: { id: string; name: string; subject: string }): string {
    const iamId = `iam-${profile.id}`;
    this.profiles.push({ ...profile, iamId });
    return iamId;
  }

  /** Tokens issued before this time (ms) are refused with 401, as after IAM revoked them. */
  private tokensValidFrom = 0;

  /** Refuses every token issued until now (401), as after a revocation; tokens issued later are accepted. */
  revokeTokens(): void {
    this.tokensValidFrom = this.now() + 1;
  }

  /** Requests with this identity's tokens are refused with 403 (its access policy was removed). */
  deny(iamId: string, denied = true): void {
    if (denied) this.denied.add(iamId);
    else this.denied.delete(iamId);
  }

  /** The next `times` matching requests get `status` (429 with Retry-After, 503…). */
  inject(fault: InjectedFault): void {
    this.faults.push({ ...fault });
  }

  /** Where Event Notifications deliveries go (undefined: none are sent). */
  private destination: { url: string; headers: Record<string, string> } | undefined;
  /** Deliveries sent, with the answer's status (0: no answer), for assertions. */
  readonly deliveries: { type: string; secretId: string; status: number }[] = [];
  private readonly pendingDeliveries = new Set<Promise<void>>();

  /**
   * Sends an Event Notifications webhook delivery to `url` with `headers`
   * (the destination's custom headers) after each change from now on; undefined stops.
   */
  notifyTo(destination: { url: string; headers?: Record<string, string> } | undefined): void {
    this.destination = destination ? { url: destination.url, headers: destination.headers ?? {} } : undefined;
  }

  /** Waits for the deliveries in flight. */
  async deliveriesSettled(): Promise<void> {
    await Promise.all([...this.pendingDeliveries]);
  }

  /** The instance's CRN, as Secrets Manager names it in notifications. */
  get crn(): string {
    return `crn:v1:bluemix:public:secrets-manager:${this.region}:a/test:${this.instanceId}::`;
  }

  /** The Event Notifications delivery for one change of one secret (exported shape for tests that send their own). */
  notificationFor(event: string, secret: { id: string; name: string; secret_type: string; secret_group_id: string }) {
    const at = new Date(this.now()).toISOString();
    return {
      specversion: '1.0',
      id: randomUUID(),
      source: this.crn,
      type: `com.ibm.cloud.secrets-manager.${event}`,
      time: at,
      datacontenttype: 'application/json',
      ibmenseverity: 'LOW',
      ibmensourceid: `${this.crn}:secrets-manager`,
      data: {
        event_type: event,
        secret_type: secret.secret_type,
        secrets: [
          {
            event_time: at,
            event_triggered_by: 'SecretsManager',
            secret_group_id: secret.secret_group_id,
            secret_id: `crn:v1:bluemix:public:secrets-manager:${this.region}:a/test:${this.instanceId}:secret:${secret.id}`,
            secret_name: secret.name,
          },
        ],
        source_instance_api_private_url: `https://${this.instanceId}.private.${this.region}.secrets-manager.appdomain.cloud/api`,
        source_instance_api_public_url: `https://${this.instanceId}.${this.region}.secrets-manager.appdomain.cloud/api`,
        source_instance_crn: this.crn,
        source_service: 'SecretsManager',
      },
    };
  }

  private publish(event: string, secret: StoredSecret): void {
    const destination = this.destination;
    if (!destination) return;
    const notification = this.notificationFor(event, secret);
    const record = { type: notification.type, secretId: secret.id, status: 0 };
    this.deliveries.push(record);
    const sent = fetch(destination.url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', ...destination.headers },
      body: JSON.stringify(notification),
      signal: AbortSignal.timeout(10_000),
    })
      .then(async (res) => {
        record.status = res.status;
        await res.arrayBuffer();
      })
      .catch(() => undefined)
      .finally(() => this.pendingDeliveries.delete(sent));
    this.pendingDeliveries.add(sent);
  }

  /** Forgets every secret and group (not keys or profiles), and the recorded requests. */
  reset(): void {
    this.secrets.clear();
    for (const id of [...this.groups.keys()]) if (id !== 'default') this.groups.delete(id);
    this.requests.length = 0;
    this.deliveries.length = 0;
    this.faults.length = 0;
    this.denied.clear();
  }

  /**
   * A new version made by the service itself (auto-rotation of credentials
   * and certificates): clients cannot do this for those types.
   */
  rotateByService(id: string, payload: Payload): string {
    const secret = this.secrets.get(id);
    if (!secret) throw new Error(`no secret ${id}`);
    const version = this.addVersion(secret, payload, {}, 'iam-ServiceId-secrets-manager');
    this.publish('secret_rotated', secret);
    return version.id;
  }

  /** The version ids of a secret, oldest first, with their custom metadata (for assertions). */
  versionsOf(id: string): { id: string; version_custom_metadata: Record<string, unknown> }[] {
    return (this.secrets.get(id)?.versions ?? []).map((v) => ({
      id: v.id,
      version_custom_metadata: v.version_custom_metadata,
    }));
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
    };
    this.requests.push(record);
    const trace = randomUUID();
    try {
      const body = await readBody(req);
      const fault = this.takeFault(url.pathname);
      if (fault?.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault && fault.status !== 0)
        throw new ApiError(fault.status, faultCode(fault.status), 'Injected by the test', fault.headers);
      if (url.pathname === '/identity/token') {
        if (record.method !== 'POST') throw new ApiError(405, 'method_not_allowed', 'Use POST');
        const answer = this.token(req, body);
        record.status = 200;
        send(res, 200, answer);
        return;
      }
      if (!url.pathname.startsWith('/api/v2/')) throw new ApiError(404, 'not_found', 'Not found');
      const iamId = this.authenticate(req);
      record.iamId = iamId;
      if (this.denied.has(iamId)) throw new ApiError(403, 'forbidden', 'Forbidden: the caller has no access policy');
      const { status, answer } = this.route(record.method, url, body, iamId);
      record.status = status;
      if (answer === undefined) {
        res.writeHead(status).end();
      } else {
        send(res, status, answer);
      }
    } catch (err) {
      const e =
        err instanceof ApiError ? err : new ApiError(500, 'internal_error', err instanceof Error ? err.message : '');
      record.status = e.status;
      if (url.pathname === '/identity/token') {
        // IAM's own error shape.
        send(res, e.status, { errorCode: e.code, errorMessage: e.message, context: { requestId: trace } }, e.headers);
        return;
      }
      send(res, e.status, { errors: [{ code: e.code, message: e.message }], status_code: e.status, trace }, e.headers);
    }
  }

  private takeFault(path: string): InjectedFault | undefined {
    const fault = this.faults.find((f) => f.times > 0 && path.startsWith(f.pathPrefix ?? '/api/'));
    if (!fault) return undefined;
    fault.times -= 1;
    if (fault.times === 0) this.faults.splice(this.faults.indexOf(fault), 1);
    return fault;
  }

  private token(req: IncomingMessage, body: string): Record<string, unknown> {
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      throw new ApiError(400, 'BXNIM0109E', 'Property missing or empty: content type must be form-urlencoded');
    const form = new URLSearchParams(body);
    const grant = form.get('grant_type');
    let iamId: string;
    if (grant === GRANT_APIKEY) {
      const key = form.get('apikey') ?? '';
      const found = this.apiKeys.get(key);
      if (!found) throw new ApiError(400, 'BXNIM0415E', 'Provided API key could not be found.');
      iamId = found;
    } else if (grant === GRANT_CR_TOKEN) {
      const subject = jwtSubject(form.get('cr_token') ?? '');
      const profileId = form.get('profile_id');
      const profileName = form.get('profile_name');
      if (!profileId && !profileName)
        throw new ApiError(400, 'BXNIM0109E', 'Property missing or empty: profile_id or profile_name');
      const profile = this.profiles.find((p) => (profileId ? p.id === profileId : p.name === profileName));
      if (!profile || subject === undefined || profile.subject !== subject)
        throw new ApiError(400, 'BXNIM0602E', 'The compute resource token is not trusted by the profile.');
      iamId = profile.iamId;
    } else {
      throw new ApiError(400, 'BXNIM0103E', 'Unsupported grant_type');
    }
    const issuedAt = Math.floor(this.now() / 1000);
    const expiration = issuedAt + this.tokenLifetimeSeconds;
    return {
      access_token: signToken(
        { iam_id: iamId, sub: iamId, iat: issuedAt, exp: expiration, iat_ms: this.now() },
        this.options.signingKey,
      ),
      refresh_token: 'not_supported',
      token_type: 'Bearer',
      expires_in: this.tokenLifetimeSeconds,
      expiration,
      scope: 'ibm openid',
    };
  }

  private authenticate(req: IncomingMessage): string {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match) throw new ApiError(401, 'unauthorized', 'Unauthorized: no bearer token');
    const claims = verifyToken(match[1] ?? '', this.options.signingKey);
    if (!claims) throw new ApiError(401, 'unauthorized', 'Unauthorized: the token is not valid');
    if (claims.exp * 1000 <= this.now()) throw new ApiError(401, 'unauthorized', 'Unauthorized: the token expired');
    if (claims.iat_ms < this.tokensValidFrom)
      throw new ApiError(401, 'unauthorized', 'Unauthorized: the token was revoked');
    return claims.iam_id;
  }

  private route(
    method: string,
    url: URL,
    body: string,
    iamId: string,
  ): { status: number; answer: Record<string, unknown> | undefined } {
    const parts = url.pathname.split('/').slice(3).map(decodeURIComponent); // after /api/v2/
    const [collection, a, b, c, d, e] = parts;
    if (collection === 'secret_groups' && parts.length === 1) {
      if (method === 'GET') {
        const list = [...this.groups.values()];
        return { status: 200, answer: { secret_groups: list, total_count: list.length } };
      }
      if (method === 'POST') return { status: 201, answer: this.createGroup(json(body)) };
    }
    if (
      collection === 'secret_groups' &&
      b === 'secret_types' &&
      d === 'secrets' &&
      parts.length === 6 &&
      a &&
      c &&
      e
    ) {
      if (method !== 'GET') throw new ApiError(405, 'method_not_allowed', 'Method not allowed');
      const group = [...this.groups.values()].find((g) => g.name === a);
      const secret =
        group &&
        [...this.secrets.values()].find((s) => s.secret_group_id === group.id && s.secret_type === c && s.name === e);
      if (!secret) throw new ApiError(404, 'not_found', 'Secret not found');
      return { status: 200, answer: this.secretWithPayload(secret) };
    }
    if (collection !== 'secrets') throw new ApiError(404, 'not_found', 'Not found');
    if (parts.length === 1) {
      if (method === 'GET') return { status: 200, answer: this.list(url) };
      if (method === 'POST') return { status: 201, answer: this.createSecret(json(body), iamId) };
      throw new ApiError(405, 'method_not_allowed', 'Method not allowed');
    }
    const secret = a !== undefined ? this.secrets.get(a) : undefined;
    if (!secret) throw new ApiError(404, 'not_found', 'Secret not found');
    if (parts.length === 2) {
      if (method === 'GET') return { status: 200, answer: this.secretWithPayload(secret) };
      if (method === 'DELETE') {
        this.secrets.delete(secret.id);
        this.publish('secret_deleted', secret);
        return { status: 204, answer: undefined };
      }
      throw new ApiError(405, 'method_not_allowed', 'Method not allowed');
    }
    if (b === 'metadata' && parts.length === 3) {
      if (method !== 'PATCH') throw new ApiError(405, 'method_not_allowed', 'Method not allowed');
      return { status: 200, answer: this.patchMetadata(secret, json(body)) };
    }
    if (b === 'versions' && parts.length === 3) {
      if (method === 'GET') {
        const versions = [...secret.versions].reverse().map((v) => this.versionMetadata(secret, v));
        return { status: 200, answer: { versions, total_count: versions.length } };
      }
      if (method === 'POST') return { status: 201, answer: this.createVersion(secret, json(body), iamId) };
      throw new ApiError(405, 'method_not_allowed', 'Method not allowed');
    }
    if (b === 'versions' && parts.length === 4 && c) {
      if (method !== 'GET') throw new ApiError(405, 'method_not_allowed', 'Method not allowed');
      const version = this.findVersion(secret, c);
      const meta = this.versionMetadata(secret, version);
      return { status: 200, answer: meta.payload_available ? { ...meta, ...version.payload } : meta };
    }
    throw new ApiError(404, 'not_found', 'Not found');
  }

  private list(url: URL): Record<string, unknown> {
    const q = url.searchParams;
    const offset = intParam(q.get('offset'), 0, 0, Number.MAX_SAFE_INTEGER, 'offset');
    const limit = intParam(q.get('limit'), 200, 1, 1000, 'limit');
    let list = [...this.secrets.values()];
    const groups = csv(q.get('groups'));
    if (groups.length > 0) list = list.filter((s) => groups.includes(s.secret_group_id));
    const types = csv(q.get('secret_types'));
    if (types.length > 0) list = list.filter((s) => types.includes(s.secret_type));
    const labels = csv(q.get('match_all_labels'));
    if (labels.length > 0) list = list.filter((s) => labels.every((l) => s.labels.includes(l)));
    const search = q.get('search');
    // The documented search matches names and labels (and ids) by substring.
    if (search)
      list = list.filter((s) => s.name.includes(search) || s.id === search || s.labels.some((l) => l.includes(search)));
    const sort = q.get('sort') ?? 'created_at';
    const desc = sort.startsWith('-');
    const field = desc ? sort.slice(1) : sort;
    if (!['id', 'created_at', 'updated_at', 'expiration_date', 'secret_type', 'name'].includes(field))
      throw new ApiError(400, 'bad_request', `sort: unknown field "${field}"`);
    list.sort((x, y) => {
      const kx = String((x as unknown as Record<string, unknown>)[field] ?? '');
      const ky = String((y as unknown as Record<string, unknown>)[field] ?? '');
      const byField = kx < ky ? -1 : kx > ky ? 1 : 0;
      return (desc ? -byField : byField) || (x.id < y.id ? -1 : 1);
    });
    const page = list.slice(offset, offset + limit);
    const href = (o: number) => {
      const u = new URL(url.toString());
      u.searchParams.set('offset', String(o));
      u.searchParams.set('limit', String(limit));
      return { href: `${u.pathname}${u.search}` };
    };
    const lastOffset = list.length === 0 ? 0 : Math.floor((list.length - 1) / limit) * limit;
    return {
      limit,
      offset,
      total_count: list.length,
      first: href(0),
      ...(offset + limit < list.length ? { next: href(offset + limit) } : {}),
      ...(offset > 0 ? { previous: href(Math.max(0, offset - limit)) } : {}),
      last: href(lastOffset),
      secrets: page.map((s) => this.metadata(s)),
    };
  }

  private createGroup(body: Record<string, unknown>): Record<string, unknown> {
    const name = body.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{2,64}$/.test(name))
      throw new ApiError(400, 'bad_request', 'name: 2 to 64 letters, digits, _ . -');
    if ([...this.groups.values()].some((g) => g.name === name))
      throw new ApiError(409, 'conflict', `A secret group named "${name}" already exists`);
    const at = new Date(this.now()).toISOString();
    const group: SecretGroup = {
      id: randomUUID(),
      name,
      ...(typeof body.description === 'string' ? { description: body.description } : {}),
      created_at: at,
      updated_at: at,
    };
    this.groups.set(group.id, group);
    return { ...group };
  }

  private createSecret(body: Record<string, unknown>, iamId: string): Record<string, unknown> {
    const type = body.secret_type;
    if (typeof type !== 'string' || !(SECRET_TYPES as readonly string[]).includes(type))
      throw new ApiError(400, 'bad_request', 'secret_type is missing or unknown');
    const name = body.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{2,256}$/.test(name))
      throw new ApiError(400, 'bad_request', 'name: 2 to 256 letters, digits, _ . -');
    const groupId = typeof body.secret_group_id === 'string' ? body.secret_group_id : 'default';
    if (!this.groups.has(groupId)) throw new ApiError(404, 'not_found', 'Secret group not found');
    const secretType = type as SecretType;
    const missing = (REQUIRED_ON_CREATE[secretType] ?? []).filter((f) => body[f] === undefined || body[f] === null);
    if (missing.length > 0)
      throw new ApiError(400, 'bad_request', `A ${secretType} secret needs ${missing.join(' and ')}`);
    const duplicate = [...this.secrets.values()].some(
      (s) => s.name === name && s.secret_type === secretType && s.secret_group_id === groupId,
    );
    if (duplicate)
      throw new ApiError(409, 'conflict', `A secret of type ${secretType} named "${name}" already exists in the group`);
    const labels = Array.isArray(body.labels) ? body.labels.filter((l): l is string => typeof l === 'string') : [];
    const at = new Date(this.now()).toISOString();
    const secret: StoredSecret = {
      id: randomUUID(),
      name,
      secret_type: secretType,
      secret_group_id: groupId,
      labels,
      ...(typeof body.description === 'string' ? { description: body.description } : {}),
      custom_metadata: objectField(body.custom_metadata),
      created_at: at,
      updated_at: at,
      created_by: iamId,
      versions: [],
    };
    this.addVersion(secret, pickPayload(secretType, body), objectField(body.version_custom_metadata), iamId);
    this.secrets.set(secret.id, secret);
    this.publish('secret_created', secret);
    return this.secretWithPayload(secret);
  }

  /**
   * PATCH /secrets/{id}/metadata (UpdateSecretMetadata, a JSON merge patch):
   * labels replaced, custom_metadata merged (a null removes a key),
   * description set. A name already taken in the group (same type) is 409.
   */
  private patchMetadata(secret: StoredSecret, body: Record<string, unknown>): Record<string, unknown> {
    if (body.name !== undefined) {
      if (typeof body.name !== 'string' || !/^[A-Za-z0-9_.-]{2,256}$/.test(body.name))
        throw new ApiError(400, 'bad_request', 'name: 2 to 256 letters, digits, _ . -');
      const taken = [...this.secrets.values()].some(
        (s) =>
          s !== secret &&
          s.name === body.name &&
          s.secret_type === secret.secret_type &&
          s.secret_group_id === secret.secret_group_id,
      );
      if (taken) throw new ApiError(409, 'conflict', `A secret named "${body.name}" already exists in the group`);
    }
    if (body.labels !== undefined && !(Array.isArray(body.labels) && body.labels.every((l) => typeof l === 'string')))
      throw new ApiError(400, 'bad_request', 'labels must be a list of strings');
    if (
      body.custom_metadata !== undefined &&
      body.custom_metadata !== null &&
      (typeof body.custom_metadata !== 'object' || Array.isArray(body.custom_metadata))
    )
      throw new ApiError(400, 'bad_request', 'custom_metadata must be an object');
    if (typeof body.name === 'string') secret.name = body.name;
    if (Array.isArray(body.labels)) secret.labels = body.labels as string[];
    if (body.custom_metadata === null) secret.custom_metadata = {};
    else if (body.custom_metadata !== undefined) {
      const merged = { ...secret.custom_metadata };
      for (const [k, v] of Object.entries(body.custom_metadata as Record<string, unknown>)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      secret.custom_metadata = merged;
    }
    if (body.description === null) delete secret.description;
    else if (typeof body.description === 'string') secret.description = body.description;
    secret.updated_at = new Date(this.now()).toISOString();
    return this.metadata(secret);
  }

  private createVersion(secret: StoredSecret, body: Record<string, unknown>, iamId: string): Record<string, unknown> {
    if (!CLIENT_VERSIONED.has(secret.secret_type))
      throw new ApiError(400, 'bad_request', `New versions of ${secret.secret_type} secrets are made by rotation`);
    const previous = secret.versions[secret.versions.length - 1]?.payload ?? {};
    // username_password versions take a new password; the username stays.
    const payload =
      secret.secret_type === 'username_password'
        ? { username: previous.username, ...pickPayload('username_password', body) }
        : pickPayload(secret.secret_type, body);
    if (Object.keys(payload).filter((k) => payload[k] !== undefined).length === 0)
      throw new ApiError(400, 'bad_request', 'The version has no payload');
    if (body.custom_metadata !== undefined) secret.custom_metadata = objectField(body.custom_metadata);
    const version = this.addVersion(secret, payload, objectField(body.version_custom_metadata), iamId);
    const meta = this.versionMetadata(secret, version);
    this.publish('secret_rotated', secret);
    return { ...meta, ...version.payload };
  }

  private addVersion(
    secret: StoredSecret,
    payload: Payload,
    custom: Record<string, unknown>,
    by: string,
  ): StoredVersion {
    const at = new Date(this.now()).toISOString();
    const version: StoredVersion = {
      id: randomUUID(),
      created_at: at,
      created_by: by,
      payload,
      version_custom_metadata: custom,
    };
    secret.versions.push(version);
    secret.updated_at = at;
    return version;
  }

  private findVersion(secret: StoredSecret, id: string): StoredVersion {
    const n = secret.versions.length;
    const version =
      id === 'current'
        ? secret.versions[n - 1]
        : id === 'previous'
          ? n >= 2
            ? secret.versions[n - 2]
            : undefined
          : secret.versions.find((v) => v.id === id);
    if (!version) throw new ApiError(404, 'not_found', 'Secret version not found');
    return version;
  }

  private metadata(secret: StoredSecret): Record<string, unknown> {
    return {
      created_by: secret.created_by,
      created_at: secret.created_at,
      crn: `crn:v1:bluemix:public:secrets-manager:${this.region}:a/test:${this.instanceId}:secret:${secret.id}`,
      custom_metadata: secret.custom_metadata,
      ...(secret.description !== undefined ? { description: secret.description } : {}),
      downloaded: false,
      id: secret.id,
      labels: secret.labels,
      locks_total: 0,
      name: secret.name,
      secret_group_id: secret.secret_group_id,
      secret_type: secret.secret_type,
      state: 1,
      state_description: 'active',
      updated_at: secret.updated_at,
      versions_total: secret.versions.length,
    };
  }

  private secretWithPayload(secret: StoredSecret): Record<string, unknown> {
    const current = secret.versions[secret.versions.length - 1];
    return { ...this.metadata(secret), ...(current?.payload ?? {}) };
  }

  private versionMetadata(
    secret: StoredSecret,
    version: StoredVersion,
  ): Record<string, unknown> & { payload_available: boolean } {
    const index = secret.versions.indexOf(version);
    const n = secret.versions.length;
    const alias = index === n - 1 ? 'current' : index === n - 2 ? 'previous' : undefined;
    return {
      auto_rotated: version.created_by === 'iam-ServiceId-secrets-manager',
      created_by: version.created_by,
      created_at: version.created_at,
      downloaded: false,
      id: version.id,
      secret_name: secret.name,
      secret_type: secret.secret_type,
      secret_group_id: secret.secret_group_id,
      payload_available: alias !== undefined,
      ...(alias ? { alias } : {}),
      version_custom_metadata: version.version_custom_metadata,
      secret_id: secret.id,
    };
  }
}

// ---- helpers ----

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(body: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ApiError(400, 'bad_request', 'The body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ApiError(400, 'bad_request', 'The body is not a JSON object');
  return parsed as Record<string, unknown>;
}

function objectField(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? { ...(value as object) } : {};
}

function pickPayload(type: SecretType, body: Record<string, unknown>): Payload {
  const out: Payload = {};
  for (const field of PAYLOAD_FIELDS[type]) if (body[field] !== undefined) out[field] = body[field];
  return out;
}

function csv(value: string | null): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function intParam(value: string | null, fallback: number, min: number, max: number, name: string): number {
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ApiError(400, 'bad_request', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

function faultCode(status: number): string {
  return status === 429 ? 'too_many_requests' : status >= 500 ? 'service_unavailable' : 'injected';
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

function signToken(
  claims: { iam_id: string; sub: string; iat: number; exp: number; iat_ms: number },
  key: string,
): string {
  const head = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

function verifyToken(token: string, key: string): { iam_id: string; exp: number; iat_ms: number } | undefined {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) return undefined;
  const want = createHmac('sha256', key).update(`${h}.${p}`).digest();
  const got = Buffer.from(s, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as {
      iam_id?: unknown;
      exp?: unknown;
      iat_ms?: unknown;
    };
    if (typeof claims.iam_id !== 'string' || typeof claims.exp !== 'number') return undefined;
    return { iam_id: claims.iam_id, exp: claims.exp, iat_ms: typeof claims.iat_ms === 'number' ? claims.iat_ms : 0 };
  } catch {
    return undefined;
  }
}

/** The `sub` claim of a JWT (a ServiceAccount token), unverified (see the opening comment). */
function jwtSubject(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}
