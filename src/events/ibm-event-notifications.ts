// IBM Cloud Event Notifications → the webhook receiver. IBM Cloud Secrets
// Manager publishes its events to an Event Notifications (EN) instance, and EN
// delivers them to a webhook destination. EN cannot compute our HMAC
// signature, so it has its own path on the webhook server (POST
// /ibm-event-notifications): it is authenticated by a shared token that EN
// sends as a custom header of the destination (`Authorization: Bearer
// <token>`, marked sensitive in EN), compared in constant time. This file
// parses what EN delivers and says which stores and entries it names.
//
// What was followed, field by field:
// - The Secrets Manager notification payload ("Enabling event notifications
//   for Secrets Manager", cloud.ibm.com/docs/secrets-manager?topic=
//   secrets-manager-event-notifications, last updated 2025-09-19): the event
//   types `com.ibm.cloud.secrets-manager.<event>` (secret_created,
//   secret_rotated, secret_deleted, secret_revoked, secret_expired,
//   secret_data_removed, secret_version_data_deleted, … and the ones that
//   change no value: *_failed, *_blocked, secret_about_to_expire, secret_task_*,
//   test_event), and the payload fields `event_type`, `event_sub_type`,
//   `secret_type`, `secrets[]` (`secret_id`, `secret_name`, `secret_group_id`,
//   `event_time`, `event_triggered_by`; at most 100 secrets per
//   notification), `source_instance_crn`, `source_instance_api_public_url`,
//   `source_instance_api_private_url`. The documented example gives
//   `secret_id` as the secret's CRN (`…:<instance id>:secret:<secret id>`)
//   while the field is described as the secret's id: both are accepted.
// - The EN payload specification ("Event Notifications payload",
//   cloud.ibm.com/docs/event-notifications?topic=event-notifications-en-spec-payload):
//   CloudEvents 1.0 with `id` (`source`+`id` unique, the same id on a
//   re-send), `source` (an IBM service's instance CRN), `specversion`,
//   `type`, `time` (RFC 3339) and `data`, in structured mode (one JSON body,
//   `application/cloudevents+json`) or binary mode (`ce-` headers, the body is
//   `data`). Both are accepted.
// - EN webhook destinations ("Webhooks", …?topic=event-notifications-en-destinations-webhook):
//   custom headers, retries every 5 s for 60 s, optional signing with a public
//   key to download. Signing is not checked here: the documentation does not
//   say how the signature is carried or what it covers, and a check built on a
//   guess would either refuse every real delivery or check nothing. The token
//   header authenticates EN; the notification carries no value, so a forged
//   one could at worst cost reads of entries the operator already reads.
//
// Freshness and replays: a notification's `time` must be within 10 minutes of
// the operator's clock (Secrets Manager sends its pending events every 1–2
// minutes and EN retries for a minute), and its `source`+`id` is remembered for
// twice that: a re-delivery is answered 204 and causes no second read.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IbmInstanceSpec, IbmSecretsManagerProviderSpec } from '../api/types.js';

export const IBM_EN_PATH = '/ibm-event-notifications';
/** How far a notification's time may be from the operator's clock. */
export const IBM_EN_WINDOW_MS = 10 * 60_000;
/** Secrets one notification may name (Secrets Manager sends at most 100). */
export const IBM_EN_MAX_SECRETS = 1_000;
export const IBM_EN_TYPE_PREFIX = 'com.ibm.cloud.secrets-manager.';

/** Events after which a secret's value (or its existence) may differ: its readers read it again. */
export const VALUE_CHANGING_EVENTS: ReadonlySet<string> = new Set([
  'secret_created',
  'secret_rotated',
  'secret_deleted',
  'secret_revoked',
  'secret_expired',
  'secret_data_removed',
  'secret_version_data_deleted',
]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECRET_TYPE = /^[a-z_]{1,64}$/;

/** One secret a notification names. */
export interface IbmNotifiedSecret {
  id: string;
  name?: string;
  groupId?: string;
}

export interface IbmNotification {
  /** CloudEvents `source` + `id`: what replays are recognised by. */
  deliveryId: string;
  timeMs: number;
  /** The event without its prefix: `secret_rotated`. */
  event: string;
  /** The Secrets Manager instance's id (a UUID, lower case). */
  instanceId: string;
  secretType: string | undefined;
  secrets: IbmNotifiedSecret[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const shortText = (v: unknown, max = 1024): string | undefined =>
  typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined;

/** The instance id of a Secrets Manager CRN (`crn:v1:<cloud>:<ctype>:secrets-manager:<region>:a/<account>:<instance>:<type>:<resource>`). */
export function instanceIdOfCrn(crn: string): string | undefined {
  const parts = crn.split(':');
  if (parts.length < 8 || parts[0] !== 'crn' || parts[4] !== 'secrets-manager') return undefined;
  const id = parts[7] ?? '';
  return UUID.test(id) ? id.toLowerCase() : undefined;
}

/** A secret's id from `secret_id`: the id itself, or the last part of the secret's CRN. */
export function secretIdOf(value: string): string | undefined {
  if (UUID.test(value)) return value.toLowerCase();
  const m = /:secret:([^:]+)$/.exec(value);
  return m && UUID.test(m[1] ?? '') ? (m[1] as string).toLowerCase() : undefined;
}

/** The instance id in a Secrets Manager service URL's host (`<id>.[private.]<region>.secrets-manager.appdomain.cloud`). */
export function instanceIdOfUrl(url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined;
  }
  const m = /^([0-9a-f-]{36})\.(?:private\.)?[a-z]+-[a-z]+(?:-\d)?\.secrets-manager\.appdomain\.cloud$/i.exec(host);
  return m && UUID.test(m[1] ?? '') ? (m[1] as string).toLowerCase() : undefined;
}

/**
 * Whether a body is a well-formed CloudEvent (id, source, type, time) of
 * another source than Secrets Manager, such as the notification EN sends when
 * a destination is tested: accepted and ignored, so that test passes.
 */
export function isForeignEvent(body: Buffer | string, header: (name: string) => string | undefined): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return false;
  }
  const structured = isObject(parsed) && typeof parsed.specversion === 'string';
  const attr = (name: string): string | undefined =>
    structured ? shortText((parsed as Record<string, unknown>)[name]) : shortText(header(`ce-${name}`));
  const type = attr('type');
  const time = attr('time');
  return (
    attr('id') !== undefined &&
    attr('source') !== undefined &&
    type !== undefined &&
    !type.startsWith(IBM_EN_TYPE_PREFIX) &&
    time !== undefined &&
    Number.isFinite(Date.parse(time))
  );
}

/**
 * Parses what EN delivers: a structured CloudEvent (the body holds `id`,
 * `source`, `type`, `time`, `data`) or a binary one (`ce-*` headers, the body
 * is `data`). Undefined for anything else: not a Secrets Manager event, no id
 * or time, an instance that cannot be told, secrets without an id, more than
 * IBM_EN_MAX_SECRETS of them. Never throws.
 */
export function parseIbmNotification(
  body: Buffer | string,
  header: (name: string) => string | undefined,
): IbmNotification | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(parsed)) return undefined;
  const structured = typeof parsed.specversion === 'string' && isObject(parsed.data);
  const attr = (name: string): string | undefined =>
    structured ? shortText(parsed[name]) : shortText(header(`ce-${name}`));
  const data = structured ? (parsed.data as Record<string, unknown>) : parsed;
  const id = attr('id');
  const source = attr('source');
  const type = attr('type');
  const time = attr('time');
  if (!id || !source || !type || !time) return undefined;
  const timeMs = Date.parse(time);
  if (!Number.isFinite(timeMs)) return undefined;
  // `type` may carry a sub-type after a colon (EN: `<event-type-name>:<sub-type>`).
  const fullType = type.split(':')[0] ?? '';
  if (!fullType.startsWith(IBM_EN_TYPE_PREFIX)) return undefined;
  const event = fullType.slice(IBM_EN_TYPE_PREFIX.length);
  const instanceId =
    (shortText(data.source_instance_crn) && instanceIdOfCrn(data.source_instance_crn as string)) ||
    instanceIdOfCrn(source) ||
    (shortText(data.source_instance_api_public_url) &&
      instanceIdOfUrl(data.source_instance_api_public_url as string)) ||
    undefined;
  if (!instanceId) return undefined;
  const secretType = shortText(data.secret_type, 64);
  if (secretType !== undefined && !SECRET_TYPE.test(secretType)) return undefined;
  const list = data.secrets ?? [];
  if (!Array.isArray(list) || list.length > IBM_EN_MAX_SECRETS) return undefined;
  const secrets: IbmNotifiedSecret[] = [];
  for (const item of list as unknown[]) {
    if (!isObject(item)) return undefined;
    const rawId = shortText(item.secret_id);
    const secretId = rawId ? secretIdOf(rawId) : undefined;
    if (!secretId) return undefined;
    const name = shortText(item.secret_name, 256);
    const groupId = shortText(item.secret_group_id, 64);
    secrets.push({ id: secretId, ...(name ? { name } : {}), ...(groupId ? { groupId } : {}) });
  }
  return { deliveryId: `${source}\n${id}`, timeMs, event, instanceId, secretType, secrets };
}

/**
 * The remote keys of a store that may read a notified secret: its id, and
 * `<group>/<type>/<name>` keys of that type and name. The group in a key is a
 * group name (or `default`) and the notification gives the group's id, which
 * only a request to the instance would turn into a name: so every known key
 * of that type and name counts, whatever its group (a same-named secret of
 * another group costs a read, never a wrong value). The bare name is included
 * for `dataFrom.find`, whose entries are secret names.
 */
export function keysOfNotifiedSecret(
  secret: IbmNotifiedSecret,
  secretType: string | undefined,
  knownKeys: Iterable<string>,
): string[] {
  const known = [...knownKeys];
  const keys = new Set<string>([secret.id]);
  if (secret.name !== undefined) {
    keys.add(secret.name);
    if (secretType !== undefined) {
      keys.add(`${secret.groupId ?? 'default'}/${secretType}/${secret.name}`);
      const suffix = `/${secretType}/${secret.name}`;
      for (const k of known) if (k.endsWith(suffix) && k.indexOf('/') === k.length - suffix.length) keys.add(k);
    }
  }
  // Keys by id are matched in any case (the index holds them as written; ids are UUIDs).
  for (const k of known) if (k.toLowerCase() === secret.id) keys.add(k);
  return [...keys];
}

/** Whether the Authorization header carries the token (`Bearer <token>` or the bare token); constant time. */
export function tokenMatches(expected: Buffer, header: string | undefined): boolean {
  if (header === undefined) return false;
  const given = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : header;
  // Equal-length digests: the comparison's time says nothing about the token's length or prefix.
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The instance of a store's instance spec: `instanceId`, else the id in the service URL's host. */
export function instanceIdOfSpec(spec: IbmInstanceSpec): string | undefined {
  if (spec.instanceId !== undefined && UUID.test(spec.instanceId)) return spec.instanceId.toLowerCase();
  return spec.serviceUrl !== undefined ? instanceIdOfUrl(spec.serviceUrl) : undefined;
}

/** Every instance a store reads from (primary and secondaries): a change in any of them concerns it. */
export function instanceIdsOfStore(spec: IbmSecretsManagerProviderSpec): string[] {
  const ids = [spec, ...(spec.failover ?? [])].map(instanceIdOfSpec).filter((id): id is string => id !== undefined);
  return [...new Set(ids)];
}
