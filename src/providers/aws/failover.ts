// Regional failover for the AWS providers: the generic failover over targets
// (../failover.ts: breakers per store, provider and target in a process-wide
// registry, the active target, moves) with what is AWS's own: which errors
// mean "unavailable" (isAvailabilityError), the regional service endpoints a
// target without an endpoint is reached at, the other targets tried recorded on
// the error for mapAwsError's message, and multi-Region KMS key ids.
import {
  RegionalClients as TargetClients,
  endpointHost,
  type RegionalClient,
  type RegionalOptions as TargetOptions,
  type RegionTarget,
} from '../failover.js';
import { isAvailabilityError, markUnavailableTargets } from './errors.js';

export {
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_OPEN_SECONDS,
  MAX_FAILOVER_TARGETS,
  RegionHealth,
  breakerSettings,
  endpointHost,
  regionHealth,
  sameTarget,
  type BreakerSettings,
  type CircuitStats,
  type FailoverEvent,
  type RegionTarget,
  type RegionalClient,
} from '../failover.js';

const SERVICE_HOSTS: Record<string, string> = {
  awsSecretsManager: 'secretsmanager',
  awsParameterStore: 'ssm',
  awsKms: 'kms',
};

/** The host a target is reached at: its endpoint's, or the regional AWS endpoint of the provider's service. */
export function targetHost(provider: string, target: RegionTarget): string {
  if (target.endpoint !== undefined) return endpointHost(target.endpoint);
  const domain = target.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${SERVICE_HOSTS[provider] ?? provider}.${target.region}.${domain}`;
}

export type RegionalOptions = Omit<TargetOptions, 'isAvailable' | 'hostOf' | 'onExhausted'> & {
  /** Default: the AWS rule (isAvailabilityError). */
  isAvailable?: (err: unknown) => boolean;
};

/**
 * A call in several regions or endpoints (see ../failover.ts), with the AWS
 * rule for unavailability, AWS's regional hosts in status, and the other
 * targets tried named in the thrown error's message (by mapAwsError).
 */
export class RegionalClients<C> extends TargetClients<C> {
  constructor(regions: RegionalClient<C>[], options: RegionalOptions) {
    super(regions, {
      ...options,
      isAvailable: options.isAvailable ?? isAvailabilityError,
      hostOf: (target) => targetHost(options.provider, target),
      onExhausted: (last, others) => {
        markUnavailableTargets(last, others);
        return last;
      },
    });
  }
}

/** Whether a KMS key id is a multi-Region key (`mrk-…`, bare or in an ARN); only those have replicas. */
export function isMultiRegionKey(keyId: string): boolean {
  const id = keyId.startsWith('arn:') ? keyId.slice(keyId.lastIndexOf('/') + 1) : keyId;
  return id.startsWith('mrk-');
}

/**
 * The same multi-Region key in another region: a key ARN's region part is
 * replaced (`arn:aws:kms:us-east-1:111122223333:key/mrk-1` →
 * `arn:aws:kms:eu-west-1:111122223333:key/mrk-1`); a bare `mrk-` id stays as it
 * is (it names the replica in whatever region is asked). Anything else is
 * returned unchanged (only multi-Region keys have replicas).
 */
export function keyIdInRegion(keyId: string, region: string): string {
  if (!isMultiRegionKey(keyId)) return keyId;
  const parts = keyId.split(':');
  if (parts[0] !== 'arn' || parts.length < 6 || parts[2] !== 'kms') return keyId;
  parts[3] = region;
  return parts.join(':');
}
