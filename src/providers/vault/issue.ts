// Issued credentials from Vault: certificates from a PKI role (POST
// <mount>/issue/<role>), dynamic secrets from any path (GET, or POST with
// parameters), and their leases (PUT sys/leases/renew, sys/leases/revoke). The
// controller asks through the provider-neutral ProviderClient methods
// (issue, renewLease, revokeLease); this file turns Vault's answers into them.
// Private keys and secret data are returned, never put in a message or a log.
import { X509Certificate } from 'node:crypto';
import { boundedText, SecretsyncError } from '../../api/errors.js';
import { Reasons } from '../../api/types.js';
import {
  ProviderError,
  type CallOptions,
  type IssueRequest,
  type IssuedCredential,
  type LeaseRenewal,
  type Properties,
} from '../provider.js';
import { VaultNotFoundError, VaultRequestError } from './errors.js';
import { encodePath, type VaultHttp } from './http.js';

/** Vault's answer to a read or write that returns a secret. */
interface SecretAnswer {
  lease_id?: unknown;
  renewable?: unknown;
  lease_duration?: unknown;
  data?: unknown;
}

/** The part of a PKI issue answer we use. */
interface PkiData {
  certificate?: unknown;
  issuing_ca?: unknown;
  ca_chain?: unknown;
  private_key?: unknown;
  serial_number?: unknown;
  expiration?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);

/** Vault's "this lease does not exist (any more)" answers to renew, as seen in 400 bodies. */
const LEASE_GONE = /lease not found|invalid lease|lease (is )?expired|lease is not renewable|cannot renew/i;

export class VaultIssuer {
  constructor(
    private readonly http: Pick<VaultHttp, 'request'>,
    private readonly label: string,
  ) {}

  /**
   * Issues; a 400 (a name the PKI role does not allow, a parameter the engine
   * refuses, and also an engine's failure to create the credential, such as an
   * AWS error) is `IssueRefused` quoting Vault's reason, bounded: it echoes the
   * spec's own names, never a secret. Retried with back-off, because some of
   * those reasons pass by themselves.
   */
  async issue(req: IssueRequest, opts: CallOptions = {}): Promise<IssuedCredential> {
    try {
      return await this.issueOnce(req, opts);
    } catch (err) {
      if (err instanceof VaultRequestError && err.status === 400) {
        const why = err.vaultErrors.map((e) => boundedText(e)).join('; ') || 'no reason given';
        throw new SecretsyncError(Reasons.IssueRefused, 'transient', `${err.message}: ${boundedText(why)}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  private async issueOnce(req: IssueRequest, opts: CallOptions): Promise<IssuedCredential> {
    const path = encodePath(req.path);
    if (req.kind === 'certificate') {
      const body: Record<string, string> = { common_name: req.commonName };
      if (req.altNames?.length) body.alt_names = req.altNames.join(',');
      if (req.ipSans?.length) body.ip_sans = req.ipSans.join(',');
      if (req.ttl) body.ttl = req.ttl;
      const answer = await this.http.request<SecretAnswer>('POST', path, {
        ...opts,
        body,
        operation: 'pki.issue',
        key: req.path,
        primaryOnly: true,
      });
      return this.certificateOf(answer, req.path);
    }
    const answer =
      req.method === 'POST'
        ? await this.http.request<SecretAnswer>('POST', path, {
            ...opts,
            body: req.parameters ?? {},
            operation: 'dynamic.issue',
            key: req.path,
            primaryOnly: true,
          })
        : await this.http.request<SecretAnswer>('GET', path, {
            ...opts,
            ...(req.parameters ? { query: req.parameters } : {}),
            operation: 'dynamic.issue',
            key: req.path,
            primaryOnly: true,
          });
    return this.dynamicOf(answer, req.path);
  }

  private certificateOf(answer: SecretAnswer | undefined, path: string): IssuedCredential {
    const data = (answer?.data ?? {}) as PkiData;
    const certificate = str(data.certificate);
    const key = str(data.private_key);
    if (!certificate || !key)
      throw new ProviderError(`${this.label}: Vault POST ${path} answered without a certificate and private key`);
    const issuingCa = str(data.issuing_ca);
    // tls.crt: the leaf and its intermediates, never a self-signed root (clients hold roots, and a root sent along is ignored at best).
    const chain = Array.isArray(data.ca_chain) ? data.ca_chain.filter((c): c is string => typeof c === 'string') : [];
    const intermediates = chain.filter((pem) => !isSelfSigned(pem));
    const tlsCrt = [certificate, ...intermediates].map((p) => p.trim()).join('\n') + '\n';
    let notBefore: Date | undefined;
    let notAfter: Date | undefined;
    try {
      const x = new X509Certificate(certificate);
      notBefore = new Date(x.validFrom);
      notAfter = new Date(x.validTo);
    } catch {
      const exp = num(data.expiration);
      if (exp > 0) notAfter = new Date(exp * 1000);
    }
    const leaseId = str(answer?.lease_id);
    const properties: Properties = { 'tls.crt': tlsCrt, 'tls.key': key.trim() + '\n' };
    if (issuingCa) properties['ca.crt'] = issuingCa.trim() + '\n';
    const serial = str(data.serial_number);
    return {
      properties,
      ...(leaseId ? { leaseId } : {}),
      renewable: answer?.renewable === true,
      leaseSeconds: num(answer?.lease_duration),
      ...(serial ? { serialNumber: serial } : {}),
      ...(notBefore ? { notBefore } : {}),
      ...(notAfter ? { notAfter } : {}),
    };
  }

  private dynamicOf(answer: SecretAnswer | undefined, path: string): IssuedCredential {
    const data = answer?.data;
    if (!data || typeof data !== 'object' || Array.isArray(data))
      throw new ProviderError(`${this.label}: Vault ${path} answered without data`);
    const properties: Properties = {};
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      if (v === null || v === undefined) continue;
      properties[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
    const leaseId = str(answer?.lease_id);
    return {
      properties,
      ...(leaseId ? { leaseId } : {}),
      renewable: answer?.renewable === true,
      leaseSeconds: num(answer?.lease_duration),
    };
  }

  /** PUT sys/leases/renew. A lease Vault no longer knows (or will not renew) is a KeyNotFoundError: issue again. */
  async renewLease(leaseId: string, incrementSeconds: number, opts: CallOptions = {}): Promise<LeaseRenewal> {
    try {
      const answer = await this.http.request<SecretAnswer>('PUT', 'sys/leases/renew', {
        ...opts,
        body: { lease_id: leaseId, increment: Math.max(0, Math.round(incrementSeconds)) },
        operation: 'lease.renew',
        key: 'a lease',
        primaryOnly: true,
      });
      return { leaseSeconds: num(answer?.lease_duration), renewable: answer?.renewable === true };
    } catch (err) {
      if (err instanceof VaultRequestError && err.status === 400 && err.vaultErrors.some((e) => LEASE_GONE.test(e)))
        throw new VaultNotFoundError(`${this.label}: the lease is gone or cannot be renewed`, 'lease', undefined);
      throw err;
    }
  }

  /** PUT sys/leases/revoke (Vault deletes what it issued; an unknown lease is already revoked). */
  async revokeLease(leaseId: string, opts: CallOptions = {}): Promise<void> {
    try {
      await this.http.request('PUT', 'sys/leases/revoke', {
        ...opts,
        body: { lease_id: leaseId },
        operation: 'lease.revoke',
        key: 'a lease',
        primaryOnly: true,
      });
    } catch (err) {
      if (
        err instanceof VaultRequestError &&
        err.status === 400 &&
        err.vaultErrors.some((e) => /invalid lease|lease not found/i.test(e))
      )
        return;
      throw err;
    }
  }
}

function isSelfSigned(pem: string): boolean {
  try {
    const x = new X509Certificate(pem);
    return x.subject === x.issuer && x.verify(x.publicKey);
  } catch {
    return false;
  }
}
