// Issued credentials: `dataFrom[].certificate` and `dataFrom[].dynamic`. Unlike
// a stored value, each read of these makes a new credential (a new key pair, a
// new database user), so they are not read at every refresh. This module
// decides, per source and per pass, whether to keep what the Secret holds,
// renew the lease, or issue again; records what was issued (never a value) in
// status.issued; holds the finalizer that revokes leases when the ManagedSecret
// is deleted. It speaks only the provider-neutral ProviderClient methods
// (issue, renewLease, revokeLease): the controller never imports Vault code.
import { createHash, X509Certificate } from 'node:crypto';
import { SecretsyncError } from '../api/errors.js';
import {
  API_VERSION,
  FINALIZER_REVOKE_LEASES,
  Reasons,
  type AnyStore,
  type CertificateSource,
  type DynamicSource,
  type IssuedStatus,
  type ManagedSecret,
} from '../api/types.js';
import { isNotFound, type KubeClient } from '../kube/client.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import {
  KeyNotFoundError,
  storeLabel,
  type CallOptions,
  type IssueRequest,
  type IssuedCredential,
  type ProviderClient,
} from '../providers/provider.js';
import type { SecretObject } from '../secrets/desired.js';
import type { EventRecorder, EventTarget } from './events.js';

export const DEFAULT_RENEW_AT_PERCENT = 66;
/** Failed revocation passes after which the finalizer is released anyway (with back-off, a few minutes). */
export const MAX_REVOKE_ATTEMPTS = 8;
const FIELD_MANAGER = 'secretsync-revoke-leases';

/** One issuing source of a ManagedSecret. */
export type IssuingSource =
  | { source: string; kind: 'certificate'; spec: CertificateSource }
  | { source: string; kind: 'dynamic'; spec: DynamicSource };

/** The issuing sources of a ManagedSecret, in spec order, named `dataFrom[<index>]` as status names them. */
export function issuingSources(ms: ManagedSecret): IssuingSource[] {
  const out: IssuingSource[] = [];
  (ms.spec.dataFrom ?? []).forEach((item, i) => {
    const source = `dataFrom[${i}]`;
    if (item.certificate) out.push({ source, kind: 'certificate', spec: item.certificate });
    else if (item.dynamic) out.push({ source, kind: 'dynamic', spec: item.dynamic });
  });
  return out;
}

/**
 * SHA-256 of what defines a source's credential (not secret: the spec is in
 * the object), with its kind. `renewAtPercent` and `onDelete` are left out:
 * changing when to renew or what to do on deletion issues nothing new.
 */
export function specHash(src: IssuingSource): string {
  const { renewAtPercent: _renew, ...rest } = src.spec;
  const defining = src.kind === 'dynamic' ? { ...rest, onDelete: undefined } : rest;
  return createHash('sha256')
    .update(JSON.stringify([src.kind, canonical(defining)]))
    .digest('hex');
}

/** The same value with object keys sorted (the API server returns custom resources' fields sorted). */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  return value;
}

/**
 * The store's `issuePaths`, from whichever provider block declares them
 * (Vault's today). Undefined: the block does not say.
 */
export function issuePathsOf(store: AnyStore): string[] | undefined {
  for (const block of Object.values(store.spec.provider) as unknown[]) {
    if (block && typeof block === 'object' && 'issuePaths' in block) {
      const paths = (block as { issuePaths?: unknown }).issuePaths;
      if (Array.isArray(paths)) return paths.filter((p): p is string => typeof p === 'string');
    }
  }
  return undefined;
}

/**
 * Whether `path` is inside an issue path: `pki/issue/` (or `pki/issue/*`) is a
 * prefix; `database/creds/app` is that path or anything under it (never
 * `database/creds/app2`). A path with empty, `.` or `..` segments is never
 * allowed (the CRD refuses them too; Vault would clean them to another path).
 */
export function issuePathAllowed(path: string, allowed: readonly string[]): boolean {
  const segments = path.split('/');
  if (path.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..')) return false;
  return allowed.some((raw) => {
    const p = raw.replace(/^\/+/, '');
    if (p === '' || p === '*') return true;
    if (p.endsWith('*')) return path.startsWith(p.slice(0, -1));
    if (p.endsWith('/')) return path.startsWith(p);
    return path === p || path.startsWith(`${p}/`);
  });
}

/** Refuses a path the store does not allow: on a ClusterSecretStore absent issuePaths allow none, on a SecretStore any. */
export function checkIssuePath(store: AnyStore, src: IssuingSource): void {
  const allowed = issuePathsOf(store);
  const path = src.spec.path;
  if (allowed === undefined) {
    if (store.kind === 'SecretStore' && issuePathAllowed(path, ['*'])) return;
    throw new SecretsyncError(
      Reasons.IssuePathNotAllowed,
      'terminal',
      `${src.source}: ${storeLabel(store)} allows no issue paths (a ClusterSecretStore must list issuePaths); ${JSON.stringify(path)} refused`,
    );
  }
  if (!issuePathAllowed(path, allowed))
    throw new SecretsyncError(
      Reasons.IssuePathNotAllowed,
      'terminal',
      `${src.source}: path ${JSON.stringify(path)} is not inside the issuePaths of ${storeLabel(store)} (${allowed.map((p) => JSON.stringify(p)).join(', ') || 'none'})`,
    );
}

function requestOf(src: IssuingSource): IssueRequest {
  if (src.kind === 'certificate') {
    const c = src.spec;
    return {
      kind: 'certificate',
      path: c.path,
      commonName: c.commonName,
      ...(c.altNames ? { altNames: c.altNames } : {}),
      ...(c.ipSans ? { ipSans: c.ipSans } : {}),
      ...(c.ttl ? { ttl: c.ttl } : {}),
    };
  }
  const d = src.spec;
  return {
    kind: 'dynamic',
    path: d.path,
    method: d.method ?? 'GET',
    ...(d.parameters ? { parameters: d.parameters } : {}),
  };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const time = (s: string | undefined) => (s === undefined ? undefined : Date.parse(s));
const percentOf = (src: IssuingSource) => (src.spec.renewAtPercent ?? DEFAULT_RENEW_AT_PERCENT) / 100;
const revokes = (src: IssuingSource) => src.kind === 'dynamic' && (src.spec.onDelete ?? 'Revoke') === 'Revoke';

/** The status entry of a fresh credential: expiry, and the renewal point at `renewAtPercent` of its lifetime. */
export function entryFor(src: IssuingSource, cred: IssuedCredential, now: number): IssuedStatus {
  const expires =
    cred.notAfter !== undefined
      ? cred.notAfter.getTime()
      : cred.leaseSeconds > 0
        ? now + cred.leaseSeconds * 1000
        : undefined;
  const entry: IssuedStatus = {
    source: src.source,
    issuedAt: iso(now),
    specHash: specHash(src),
    keys: Object.keys(cred.properties).sort(),
  };
  if (cred.leaseId) entry.leaseId = cred.leaseId;
  if (cred.serialNumber) entry.serialNumber = cred.serialNumber;
  if (cred.leaseId) {
    entry.renewable = cred.renewable;
    if (cred.leaseSeconds > 0) entry.leaseSeconds = cred.leaseSeconds;
  }
  if (expires !== undefined) {
    entry.expiresAt = iso(expires);
    entry.renewAt = iso(now + Math.max(0, expires - now) * percentOf(src));
  }
  return entry;
}

interface Remembered {
  entry: IssuedStatus;
  values: Record<string, string>;
}

/** What `prepare` hands the sync: the issued values, and status.issued as it should be after the write. */
export interface IssuedValues {
  values: Record<string, string>;
  entries: IssuedStatus[];
}

/** What issuing needs of the operator (narrow, so unit tests can stand in for it). */
export interface IssuedDeps {
  client: Pick<KubeClient, 'request'>;
  events: Pick<EventRecorder, 'emit'>;
  eventTarget(ms: ManagedSecret): EventTarget;
  log: Logger;
  now?: () => number;
}

/** How a deletion pass ended: the finalizer is gone (or never was), or look again after a back-off. */
export type FinalizeResult = 'released' | 'retry';

const nameOf = (ms: ManagedSecret) => `${ms.metadata.namespace}/${ms.metadata.name}`;

export class IssuedCredentials {
  /**
   * The values issued per ManagedSecret (by uid) and source, in memory: used
   * when the Secret cannot give them back (a template renders them into other
   * keys, the write failed after issuing, the Secret drifted). Lost on restart:
   * then such sources are issued again (and the old lease left to expire).
   */
  private readonly memory = new Map<string, Map<string, Remembered>>();
  /** Failed revocation passes per ManagedSecret uid. */
  private readonly revokeAttempts = new Map<string, number>();

  constructor(private readonly deps: IssuedDeps) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** The ManagedSecret is gone: drop its values from memory. */
  forget(ms: ManagedSecret): void {
    const uid = ms.metadata.uid ?? nameOf(ms);
    this.memory.delete(uid);
    this.revokeAttempts.delete(uid);
  }

  /** The earliest renewal point (epoch ms) of its issued sources, or undefined when none is due ever. */
  nextRenewal(ms: ManagedSecret): number | undefined {
    const sources = issuingSources(ms);
    if (sources.length === 0) return undefined;
    const remembered = this.memory.get(ms.metadata.uid ?? nameOf(ms));
    let next: number | undefined;
    for (const src of sources) {
      const entry = newer(
        ms.status?.issued?.find((e) => e.source === src.source),
        remembered?.get(src.source)?.entry,
      );
      const at = time(entry?.renewAt);
      if (at !== undefined && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /**
   * The values of every issuing source for this pass: kept (from memory, or
   * from the Secret when its data is what we wrote and no template renamed
   * the keys) while valid and unchanged; renewed at the renewal point; issued
   * (again) otherwise. Adds the revoke-leases finalizer before the first lease
   * that will need revoking is issued. Undefined: no issuing sources.
   */
  async prepare(
    ms: ManagedSecret,
    store: AnyStore,
    client: ProviderClient,
    existing: SecretObject | undefined,
    existingTrusted: boolean,
    opts: CallOptions,
  ): Promise<IssuedValues | undefined> {
    const sources = issuingSources(ms);
    if (sources.length === 0) return undefined;
    for (const src of sources) checkIssuePath(store, src);
    const issue = client.issue?.bind(client);
    if (!issue)
      throw new SecretsyncError(
        Reasons.IssueNotSupported,
        'terminal',
        `${storeLabel(store)} cannot issue certificates or dynamic secrets (dataFrom certificate and dynamic need a vault store)`,
      );
    const uid = ms.metadata.uid ?? nameOf(ms);
    let remembered = this.memory.get(uid);
    if (!remembered) {
      remembered = new Map();
      this.memory.set(uid, remembered);
    }
    const values: Record<string, string> = {};
    const entries: IssuedStatus[] = [];
    for (const src of sources) {
      const hash = specHash(src);
      const recorded = ms.status?.issued?.find((e) => e.source === src.source);
      const held = remembered.get(src.source);
      let kept: Remembered | undefined;
      if (held && held.entry.specHash === hash && newer(recorded, held.entry) === held.entry) kept = held;
      else if (recorded?.specHash === hash && existingTrusted && !ms.spec.target?.template)
        kept = fromSecret(recorded, existing);
      const now = this.now();
      let current: Remembered | undefined;
      if (kept && kept.entry.renewAt !== undefined) {
        const renewAt = Date.parse(kept.entry.renewAt);
        const expiresAt = time(kept.entry.expiresAt) ?? Infinity;
        if (now < renewAt) current = kept;
        else if (now < expiresAt && src.kind === 'dynamic' && kept.entry.leaseId && kept.entry.renewable)
          current = await this.renew(ms, src, kept, client, opts);
      }
      if (!current) {
        if (revokes(src)) await this.ensureFinalizer(ms, opts.signal);
        const cred = await issue(requestOf(src), opts);
        current = { entry: entryFor(src, cred, this.now()), values: { ...cred.properties } };
        const replaced = kept ?? (recorded ? { entry: recorded } : undefined);
        this.deps.log.info('issued', {
          managedSecret: nameOf(ms),
          source: src.source,
          path: src.spec.path,
          ...(current.entry.expiresAt ? { expiresAt: current.entry.expiresAt } : {}),
          replaced: replaced !== undefined,
        });
        this.deps.events.emit(
          this.deps.eventTarget(ms),
          'Normal',
          Reasons.Issued,
          `${src.source}: ${src.kind === 'certificate' ? 'certificate' : 'secret'} ${replaced ? 're-issued' : 'issued'} from ${src.spec.path}` +
            (current.entry.expiresAt ? `, expires ${current.entry.expiresAt}` : ''),
        );
      }
      // A kept lease whose source was switched to onDelete: Revoke needs the finalizer too.
      if (revokes(src) && current.entry.leaseId) await this.ensureFinalizer(ms, opts.signal);
      remembered.set(src.source, current);
      Object.assign(values, current.values);
      entries.push(current.entry);
    }
    // Sources no longer in the spec: nothing more to keep.
    for (const source of remembered.keys()) if (!sources.some((s) => s.source === source)) remembered.delete(source);
    return { values, entries };
  }

  /**
   * Renews a lease; undefined means issue again instead: the lease is gone, is
   * no longer renewable, or the renewed lifetime ends before the next renewal
   * point would come (max_ttl reached).
   */
  private async renew(
    ms: ManagedSecret,
    src: IssuingSource,
    kept: Remembered,
    client: ProviderClient,
    opts: CallOptions,
  ): Promise<Remembered | undefined> {
    const leaseId = kept.entry.leaseId;
    if (!leaseId || !client.renewLease) return undefined;
    const asked = kept.entry.leaseSeconds ?? leaseSecondsOf(kept.entry);
    let granted: { leaseSeconds: number; renewable: boolean };
    try {
      granted = await client.renewLease(leaseId, asked, opts);
    } catch (err) {
      if (err instanceof KeyNotFoundError) {
        this.deps.log.info('lease gone: issuing again', { managedSecret: nameOf(ms), source: src.source });
        return undefined;
      }
      throw err;
    }
    const pct = percentOf(src);
    if (granted.leaseSeconds <= asked * pct) {
      this.deps.log.info('lease near its max_ttl: issuing again', {
        managedSecret: nameOf(ms),
        source: src.source,
        grantedSeconds: granted.leaseSeconds,
      });
      return undefined;
    }
    const now = this.now();
    const entry: IssuedStatus = {
      ...kept.entry,
      renewable: granted.renewable,
      expiresAt: iso(now + granted.leaseSeconds * 1000),
      renewAt: iso(now + granted.leaseSeconds * 1000 * pct),
    };
    this.deps.log.info('lease renewed', {
      managedSecret: nameOf(ms),
      source: src.source,
      expiresAt: entry.expiresAt,
    });
    return { entry, values: kept.values };
  }

  /** Adds the revoke-leases finalizer (server-side apply: only this list item is ours). */
  private async ensureFinalizer(ms: ManagedSecret, signal: AbortSignal | undefined): Promise<void> {
    if (ms.metadata.finalizers?.includes(FINALIZER_REVOKE_LEASES)) return;
    await this.applyFinalizers(ms, [FINALIZER_REVOKE_LEASES], signal);
    ms.metadata.finalizers = [...(ms.metadata.finalizers ?? []), FINALIZER_REVOKE_LEASES];
  }

  private async applyFinalizers(ms: ManagedSecret, finalizers: string[], signal: AbortSignal | undefined) {
    const ns = ms.metadata.namespace ?? '';
    await this.deps.client.request(
      'PATCH',
      `/apis/${API_VERSION}/namespaces/${ns}/managedsecrets/${ms.metadata.name}`,
      {
        body: {
          apiVersion: API_VERSION,
          kind: 'ManagedSecret',
          metadata: { name: ms.metadata.name, namespace: ns, uid: ms.metadata.uid, finalizers },
        },
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager: FIELD_MANAGER },
        ...(signal ? { signal } : {}),
      },
    );
  }

  /**
   * A deleted ManagedSecret that holds the finalizer: revokes its leases
   * (sources with onDelete Revoke), then releases the finalizer. When the
   * store is gone or keeps refusing, the finalizer is released anyway once
   * every lease has expired by itself or after MAX_REVOKE_ATTEMPTS passes
   * (with a Warning Event naming the lease's expiry), so a namespace deletion
   * never waits forever on an unreachable backend.
   */
  async finalize(
    ms: ManagedSecret,
    connect: () => Promise<{ store: AnyStore; client: ProviderClient } | { reason: string; message: string }>,
    opts: CallOptions,
  ): Promise<FinalizeResult> {
    if (!ms.metadata.finalizers?.includes(FINALIZER_REVOKE_LEASES)) return 'released';
    const uid = ms.metadata.uid ?? nameOf(ms);
    const leases = this.revocableLeases(ms);
    let failure: string | undefined;
    if (leases.length > 0) {
      try {
        const connected = await connect();
        if ('reason' in connected) throw new Error(connected.message);
        const { client, store } = connected;
        if (!client.revokeLease) throw new Error(`${storeLabel(store)} cannot revoke leases`);
        for (const lease of leases) await client.revokeLease(lease.leaseId, opts);
        this.deps.events.emit(
          this.deps.eventTarget(ms),
          'Normal',
          Reasons.LeaseRevoked,
          `revoked ${leases.length} lease${leases.length === 1 ? '' : 's'} (${leases.map((l) => l.source).join(', ')})`,
        );
        this.deps.log.info('leases revoked', { managedSecret: nameOf(ms), leases: leases.length });
      } catch (err) {
        failure = errorMessage(err);
      }
    }
    if (failure !== undefined) {
      const attempts = (this.revokeAttempts.get(uid) ?? 0) + 1;
      this.revokeAttempts.set(uid, attempts);
      const latest = Math.max(...leases.map((l) => l.expiresAt ?? Infinity));
      const expired = latest <= this.now();
      const giveUp = expired || attempts >= MAX_REVOKE_ATTEMPTS;
      const until = Number.isFinite(latest) ? `it expires at ${iso(latest)}` : 'it has no known expiry';
      const message = giveUp
        ? `could not revoke ${leases.length} lease(s) after ${attempts} attempt(s): ${failure}; the finalizer is released, ` +
          (expired ? 'the leases have expired by themselves' : `the lease is left to expire (${until})`)
        : `could not revoke ${leases.length} lease(s) (attempt ${attempts} of ${MAX_REVOKE_ATTEMPTS}): ${failure}`;
      this.deps.events.emit(this.deps.eventTarget(ms), 'Warning', Reasons.RevokeFailed, message);
      this.deps.log.warn('lease revocation failed', { managedSecret: nameOf(ms), attempts, giveUp, error: failure });
      if (!giveUp) return 'retry';
    }
    try {
      await this.applyFinalizers(ms, [], opts.signal);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.forget(ms);
    return 'released';
  }

  /** Leases to revoke on deletion: those status recorded and those issued since (in memory), of Revoke sources. */
  private revocableLeases(ms: ManagedSecret): { source: string; leaseId: string; expiresAt?: number }[] {
    const bySource = new Map(issuingSources(ms).map((s) => [s.source, s]));
    const remembered = this.memory.get(ms.metadata.uid ?? nameOf(ms));
    const out = new Map<string, { source: string; leaseId: string; expiresAt?: number }>();
    const add = (e: IssuedStatus | undefined) => {
      if (!e?.leaseId) return;
      const src = bySource.get(e.source);
      if (!src || !revokes(src)) return;
      const expiresAt = time(e.expiresAt);
      out.set(e.leaseId, { source: e.source, leaseId: e.leaseId, ...(expiresAt !== undefined ? { expiresAt } : {}) });
    };
    for (const e of ms.status?.issued ?? []) add(e);
    for (const r of remembered?.values() ?? []) add(r.entry);
    return [...out.values()];
  }
}

/** The later-issued of two entries for one source (a replica may have issued since this one remembered). */
function newer(a: IssuedStatus | undefined, b: IssuedStatus | undefined): IssuedStatus | undefined {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b.issuedAt) >= Date.parse(a.issuedAt) ? b : a;
}

/** The lifetime of a lease at issuance, from what status kept (entries written before leaseSeconds existed). */
function leaseSecondsOf(entry: IssuedStatus): number {
  const issued = Date.parse(entry.issuedAt);
  const expires = time(entry.expiresAt);
  return expires === undefined ? 0 : Math.max(1, Math.round((expires - issued) / 1000));
}

/**
 * The values of a source as the Secret holds them, when it holds every key the
 * source wrote and, for a certificate, the certificate status names.
 */
function fromSecret(entry: IssuedStatus, secret: SecretObject | undefined): Remembered | undefined {
  if (!secret?.data || !entry.keys || entry.keys.length === 0) return undefined;
  const values: Record<string, string> = {};
  for (const k of entry.keys) {
    const v = Object.hasOwn(secret.data, k) ? secret.data[k] : undefined;
    if (v === undefined) return undefined;
    values[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  if (entry.serialNumber !== undefined) {
    const pem = values['tls.crt'];
    if (pem === undefined || certificateSerial(pem) !== normalizeSerial(entry.serialNumber)) return undefined;
  }
  return { entry, values };
}

/** The serial number of the first certificate in a PEM bundle, as uppercase hex without separators. */
export function certificateSerial(pem: string): string | undefined {
  try {
    return normalizeSerial(new X509Certificate(pem).serialNumber);
  } catch {
    return undefined;
  }
}

const normalizeSerial = (s: string) => s.replace(/:/g, '').replace(/^0+/, '').toUpperCase();
