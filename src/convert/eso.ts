// `secretsync convert`: External Secrets Operator (ESO) manifests in, the
// equivalent secretsync resources out, with a note for every field that could
// not be carried over and why. Pure: manifests are data here, nothing reads a
// cluster or a secret value. The ESO API was learnt from its Go types
// (apis/externalsecrets/v1 and v1beta1, which have the same shape for
// everything converted here); secretsync's is docs/api.md.
//
// The rule throughout: carry over what means the same; drop (and report) what
// would change the written values or widen access, rather than guess.
import {
  API_VERSION,
  type AwsAuthSpec,
  type AwsCommonSpec,
  type ClusterSecretStore,
  type ClusterStoreCondition,
  type CreationPolicy,
  type DataFromItem,
  type DataItem,
  type DeletionPolicy,
  type LabelSelector,
  type ManagedSecret,
  type ManagedSecretSpec,
  type ObjectMeta,
  type ProviderSpec,
  type SecretKeyRef,
  type SecretStore,
  type TargetSpec,
} from '../api/types.js';
import { parseDuration } from '../controller/schedule.js';
import { metadataKeyRefusal, secretTypeRefusal } from '../secrets/validate.js';
import { goTemplateToMustache } from './go-template.js';

/** ESO's API group; v1 and v1beta1 are converted, older shapes are not. */
const ESO_GROUP = 'external-secrets.io';
const ESO_VERSIONS = ['v1', 'v1beta1'];

/** Set on every converted object: where it came from (audit, and the migration guide's listing). */
export const ANNOTATION_CONVERTED_FROM = 'secretsync.io/converted-from';

/** skipped: the object was not converted; dropped: a field was left out; changed: carried over with a difference to check. */
export type NoteSeverity = 'skipped' | 'dropped' | 'changed';

export interface ConversionNote {
  severity: NoteSeverity;
  /** The ESO object, such as `ExternalSecret team-a/db`. */
  source: string;
  /** The field of the ESO object, such as `spec.data[0].remoteRef.decodingStrategy`; empty for the object. */
  field: string;
  /** What became of it and why. Never a secret value (the input holds none). */
  message: string;
}

export type ConvertedObject = SecretStore | ClusterSecretStore | ManagedSecret;

export interface ConversionResult {
  objects: ConvertedObject[];
  notes: ConversionNote[];
}

export interface ConvertOptions {
  /**
   * Namespaces a ClusterExternalSecret's namespace selectors select, by its
   * name, as `kubectl get namespaces -l …` lists them (only a cluster can
   * resolve a label selector).
   */
  selectedNamespaces?: Record<string, string[]>;
}

/** One line of the report. */
export function formatNote(note: ConversionNote): string {
  return `${note.severity}: ${note.source}${note.field ? `: ${note.field}` : ''}: ${note.message}`;
}

// ---------------------------------------------------------------------------
// Reading untyped YAML.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strMap = (v: unknown): Record<string, string> | undefined => {
  if (!isObj(v)) return undefined;
  const out = Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return Object.keys(out).length > 0 ? out : undefined;
};
const strList = (v: unknown): string[] => arr(v).filter((x): x is string => typeof x === 'string' && x !== '');

/** Fields of an ESO object that `keys` lists as handled; every other set field is reported as dropped. */
function reportUnknown(o: Obj, handled: readonly string[], at: string, note: Noter): void {
  for (const [k, v] of Object.entries(o)) {
    if (handled.includes(k) || v === undefined || v === null || v === false || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    note('dropped', `${at}${k}`, 'not understood by this converter, left out');
  }
}

type Noter = (severity: NoteSeverity, field: string, message: string) => void;

// ---------------------------------------------------------------------------
// Stores.

/** What ExternalSecrets need to know of a store converted in the same run. */
interface StoreInfo {
  converted: boolean;
  service?: 'awsSecretsManager' | 'awsParameterStore';
  /** ESO's provider.aws.prefix: prepended to every key read through the store. */
  prefix?: string;
}

const storeKey = (kind: string, namespace: string | undefined, name: string) =>
  kind === 'ClusterSecretStore' ? `ClusterSecretStore/${name}` : `SecretStore/${namespace ?? ''}/${name}`;

const ROLE_ARN = /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/.+$/;

/** Annotations of ESO objects that mean nothing on ours (kubectl and GitOps bookkeeping, ESO's own). */
const DROPPED_ANNOTATION =
  /^(kubectl\.kubernetes\.io\/last-applied-configuration|argocd\.argoproj\.io\/|external-secrets\.io\/)/;

/**
 * Argo CD's tracking label: copied onto a converted object applied outside the
 * Application, it would make Argo CD count the object as its own and prune it.
 */
function withoutTrackingLabel(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!labels) return undefined;
  const { 'app.kubernetes.io/instance': _tracking, ...rest } = labels;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

function metadataOf(meta: Obj, source: string, apiVersion: string, kind: string): ObjectMeta {
  const name = str(meta.name) ?? '';
  const namespace = str(meta.namespace);
  const labels = withoutTrackingLabel(strMap(meta.labels));
  const annotations = Object.fromEntries(
    Object.entries(strMap(meta.annotations) ?? {}).filter(([k]) => !DROPPED_ANNOTATION.test(k)),
  );
  annotations[ANNOTATION_CONVERTED_FROM] = `${apiVersion} ${kind} ${source.split(' ')[1] ?? name}`;
  return { name, ...(namespace ? { namespace } : {}), ...(labels ? { labels } : {}), annotations };
}

function secretKeyRef(sel: unknown, field: string, cluster: boolean, note: Noter): SecretKeyRef | undefined {
  const s = obj(sel);
  const name = str(s.name);
  const key = str(s.key);
  if (!name || !key) {
    note('skipped', field, 'needs both name and key (secretsync has no default key for credentials)');
    return undefined;
  }
  const namespace = str(s.namespace);
  if (namespace && !cluster)
    note('dropped', `${field}.namespace`, 'a SecretStore reads its credentials from its own namespace in secretsync');
  return { name, key, ...(namespace && cluster ? { namespace } : {}) };
}

function convertAuth(aws: Obj, cluster: boolean, note: Noter): { auth?: AwsAuthSpec; roleArn?: string; ok: boolean } {
  const auth = obj(aws.auth);
  const role = str(aws.role);
  const secretRef = obj(auth.secretRef);
  const jwt = obj(auth.jwt);
  reportUnknown(auth, ['secretRef', 'jwt'], 'spec.provider.aws.auth.', note);
  if (Object.keys(secretRef).length > 0) {
    if (Object.keys(jwt).length > 0)
      note(
        'dropped',
        'spec.provider.aws.auth.jwt',
        'set beside secretRef; secretsync uses one: the static credentials',
      );
    const at = 'spec.provider.aws.auth.secretRef';
    const accessKeyIdSecretRef = secretKeyRef(
      secretRef.accessKeyIDSecretRef,
      `${at}.accessKeyIDSecretRef`,
      cluster,
      note,
    );
    const secretAccessKeySecretRef = secretKeyRef(
      secretRef.secretAccessKeySecretRef,
      `${at}.secretAccessKeySecretRef`,
      cluster,
      note,
    );
    const session = secretRef.sessionTokenSecretRef
      ? secretKeyRef(secretRef.sessionTokenSecretRef, `${at}.sessionTokenSecretRef`, cluster, note)
      : undefined;
    if (!accessKeyIdSecretRef || !secretAccessKeySecretRef || (secretRef.sessionTokenSecretRef && !session))
      return { ok: false };
    return {
      ok: true,
      auth: {
        secretRef: {
          accessKeyIdSecretRef,
          secretAccessKeySecretRef,
          ...(session ? { sessionTokenSecretRef: session } : {}),
        },
      },
      ...(role ? { roleArn: role } : {}),
    };
  }
  const sa = obj(jwt.serviceAccountRef);
  if (Object.keys(sa).length > 0) {
    const name = str(sa.name);
    const at = 'spec.provider.aws.auth.jwt.serviceAccountRef';
    if (!name) {
      note('skipped', at, 'has no name');
      return { ok: false };
    }
    if (!role) {
      note(
        'skipped',
        at,
        "secretsync exchanges the ServiceAccount's token for spec.provider.aws.role itself (AssumeRoleWithWebIdentity) and needs that role on the store; ESO takes it from the ServiceAccount's eks.amazonaws.com/role-arn annotation, which this command does not read: set role to that ARN in the input and convert again",
      );
      return { ok: false };
    }
    note(
      'changed',
      at,
      "ESO assumes the ServiceAccount's own role (eks.amazonaws.com/role-arn) and then role; secretsync exchanges the ServiceAccount's token for role directly, so role's trust policy must accept this ServiceAccount's web identity",
    );
    const namespace = str(sa.namespace);
    if (namespace && !cluster)
      note('dropped', `${at}.namespace`, 'a SecretStore may only name ServiceAccounts of its own namespace');
    const audiences = strList(sa.audiences);
    return {
      ok: true,
      auth: {
        serviceAccountRef: {
          name,
          ...(namespace && cluster ? { namespace } : {}),
          ...(audiences.length > 0 ? { audiences } : {}),
        },
      },
      roleArn: role,
    };
  }
  // No auth: ESO used its controller's identity; secretsync uses the operator's.
  if (role === undefined)
    note(
      'changed',
      'spec.provider.aws.auth',
      "absent: the store now uses the secretsync operator's AWS identity instead of ESO's",
    );
  return { ok: true, ...(role ? { roleArn: role } : {}) };
}

/** The ESO aws provider fields that have no secretsync equivalent, and why. */
const AWS_DROPPED: Record<string, string> = {
  additionalRoles: 'secretsync assumes one role (roleArn); the chain of roles before it is left out',
  externalID: 'secretsync does not pass an external id when it assumes the role',
  sessionTags: 'secretsync does not tag its STS sessions',
  transitiveTagKeys: 'secretsync does not tag its STS sessions',
  sessionTagsPolicy: 'secretsync does not tag its STS sessions',
  customSessionTags: 'secretsync does not tag its STS sessions',
  secretsManager: 'deletion settings for PushSecret; secretsync does not push values',
};

function convertStore(
  doc: Obj,
  kind: 'SecretStore' | 'ClusterSecretStore',
  source: string,
  apiVersion: string,
  note: Noter,
) {
  const spec = obj(doc.spec);
  const provider = obj(spec.provider);
  const names = Object.keys(provider).filter((k) => provider[k] !== undefined && provider[k] !== null);
  const info: StoreInfo = { converted: false };
  if (names.length !== 1 || names[0] !== 'aws') {
    note(
      'skipped',
      'spec.provider',
      `provider ${names.join(', ') || '(none)'} has no secretsync equivalent (secretsync reads AWS Secrets Manager and Parameter Store, and its own local store); ExternalSecrets that use this store are skipped too`,
    );
    return { info };
  }
  const aws = obj(provider.aws);
  const service = str(aws.service);
  const providerKey: StoreInfo['service'] =
    service === 'SecretsManager' ? 'awsSecretsManager' : service === 'ParameterStore' ? 'awsParameterStore' : undefined;
  if (!providerKey) {
    note(
      'skipped',
      'spec.provider.aws.service',
      `${service ?? '(none)'} has no secretsync equivalent (SecretsManager and ParameterStore do)`,
    );
    return { info };
  }
  const region = str(aws.region);
  if (!region) {
    note('skipped', 'spec.provider.aws.region', 'is required');
    return { info };
  }
  const cluster = kind === 'ClusterSecretStore';
  const { auth, roleArn, ok } = convertAuth(aws, cluster, note);
  if (!ok) return { info };
  if (roleArn && !ROLE_ARN.test(roleArn)) {
    note(
      'skipped',
      'spec.provider.aws.role',
      'is not an IAM role ARN (arn:aws:iam::<account>:role/<name>), which secretsync requires',
    );
    return { info };
  }
  for (const [k, why] of Object.entries(AWS_DROPPED))
    if (aws[k] !== undefined && aws[k] !== null && !(Array.isArray(aws[k]) && (aws[k] as unknown[]).length === 0))
      note('dropped', `spec.provider.aws.${k}`, why);
  reportUnknown(
    aws,
    ['service', 'region', 'role', 'auth', 'prefix', ...Object.keys(AWS_DROPPED)],
    'spec.provider.aws.',
    note,
  );
  const prefix = str(aws.prefix);
  if (prefix)
    note(
      'changed',
      'spec.provider.aws.prefix',
      'secretsync stores have no key prefix: it is prepended to the keys of the ExternalSecrets converted in the same run',
    );
  for (const k of ['controller', 'retrySettings', 'refreshInterval'])
    if (spec[k] !== undefined && spec[k] !== null && spec[k] !== '')
      note(
        'dropped',
        `spec.${k}`,
        k === 'controller'
          ? 'secretsync has no controller classes'
          : 'secretsync checks stores on its own schedule and retries with back-off',
      );

  const common: AwsCommonSpec = { region, ...(auth ? { auth } : {}), ...(roleArn ? { roleArn } : {}) };
  const providerSpec: ProviderSpec =
    providerKey === 'awsSecretsManager' ? { awsSecretsManager: common } : { awsParameterStore: common };
  const metadata = metadataOf(obj(doc.metadata), source, apiVersion, kind);
  let out: SecretStore | ClusterSecretStore;
  if (cluster) {
    const conditions = convertConditions(arr(spec.conditions), note);
    if (conditions === undefined) return { info };
    const { namespace: _ns, ...clusterMeta } = metadata;
    out = {
      apiVersion: API_VERSION,
      kind: 'ClusterSecretStore',
      metadata: clusterMeta,
      spec: { provider: providerSpec, ...(conditions.length > 0 ? { conditions } : {}) },
    };
  } else {
    out = { apiVersion: API_VERSION, kind: 'SecretStore', metadata, spec: { provider: providerSpec } };
  }
  return { info: { converted: true, service: providerKey, ...(prefix ? { prefix } : {}) }, object: out };
}

/**
 * ClusterSecretStore conditions. A namespaceRegexes entry that names one
 * namespace (`^team-a$`) becomes a namespace; any other is left out, which
 * narrows the store's reach. If that leaves no condition where ESO had some,
 * the store would be open to every namespace: it is not converted.
 */
function convertConditions(items: unknown[], note: Noter): ClusterStoreCondition[] | undefined {
  const out: ClusterStoreCondition[] = [];
  items.forEach((item, i) => {
    const c = obj(item);
    const at = `spec.conditions[${i}]`;
    const namespaces = strList(c.namespaces);
    for (const re of strList(c.namespaceRegexes)) {
      const literal = /^\^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\$$/.exec(re);
      if (literal?.[1]) namespaces.push(literal[1]);
      else
        note(
          'dropped',
          `${at}.namespaceRegexes`,
          `"${re}" is not one namespace; secretsync conditions list namespaces or select them by label, so the namespaces only this pattern admitted lose access`,
        );
    }
    const selector = c.namespaceSelector ? labelSelector(c.namespaceSelector) : undefined;
    if (namespaces.length > 0) out.push({ namespaces });
    if (selector) out.push({ namespaceSelector: selector });
  });
  if (items.length > 0 && out.length === 0) {
    note(
      'skipped',
      'spec.conditions',
      'none of its conditions can be carried over, and no condition would open the store to every namespace',
    );
    return undefined;
  }
  return out;
}

function labelSelector(v: unknown): LabelSelector | undefined {
  const s = obj(v);
  const matchLabels = strMap(s.matchLabels);
  const matchExpressions = arr(s.matchExpressions).map((e) => {
    const x = obj(e);
    const values = strList(x.values);
    return {
      key: str(x.key) ?? '',
      operator: (str(x.operator) ?? 'Exists') as 'In' | 'NotIn' | 'Exists' | 'DoesNotExist',
      ...(values.length > 0 ? { values } : {}),
    };
  });
  if (!matchLabels && matchExpressions.length === 0) return undefined;
  return { ...(matchLabels ? { matchLabels } : {}), ...(matchExpressions.length > 0 ? { matchExpressions } : {}) };
}

/** A label selector as `kubectl get -l` takes it. */
export function selectorText(sel: LabelSelector): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

// ---------------------------------------------------------------------------
// ExternalSecrets.

interface SpecContext {
  namespace: string | undefined;
  stores: Map<string, StoreInfo>;
  note: Noter;
  /** The ManagedSecret's name (for the Merge consent hint). */
  name: string;
}

const isSet = (v: unknown) => v !== undefined && v !== null && v !== '';

/**
 * Checks a remoteRef's (or extract's, or find's) strategies: values ESO decodes
 * or keys it converts differently would change what the Secret holds, so the
 * item is left out (the Secret keeps the last value ESO wrote until takeover).
 */
function strategiesRefusal(ref: Obj): string | undefined {
  const decoding = str(ref.decodingStrategy);
  if (decoding && decoding !== 'None')
    return `decodingStrategy ${decoding}: ESO decodes the value, secretsync writes it as stored`;
  const conversion = str(ref.conversionStrategy);
  if (conversion && conversion !== 'Default') return `conversionStrategy ${conversion} has no secretsync equivalent`;
  if (str(ref.metadataPolicy) === 'Fetch')
    return 'metadataPolicy Fetch reads the tags, not the value; secretsync reads values only';
  return undefined;
}

/** An ESO Secrets Manager version: `uuid/<id>` is a version id, anything else a staging label; secretsync takes either as is. */
function versionOf(ref: Obj): string | undefined {
  const version = str(ref.version);
  return version?.startsWith('uuid/') ? version.slice(5) : version;
}

function sourceStoreRefusal(sourceRef: unknown, main: { kind: string; name: string }): string | undefined {
  const s = obj(sourceRef);
  if (s.generatorRef)
    return 'reads from a generator; secretsync generates values only by rotation (spec.rotation), which writes them to a store';
  const ref = obj(s.storeRef);
  const name = str(ref.name);
  if (name && (name !== main.name || (str(ref.kind) ?? 'SecretStore') !== main.kind))
    return `reads from store ${name}, not ${main.name}; one ManagedSecret reads one store: make another ManagedSecret for it`;
  return undefined;
}

function convertSpec(spec: Obj, ctx: SpecContext): ManagedSecretSpec | undefined {
  const { note } = ctx;
  reportUnknown(
    spec,
    ['secretStoreRef', 'target', 'refreshPolicy', 'refreshInterval', 'syncWindows', 'data', 'dataFrom'],
    'spec.',
    note,
  );
  // The store: spec.secretStoreRef, or the one store every item names.
  let storeRefIn = obj(spec.secretStoreRef);
  if (!str(storeRefIn.name)) {
    const refs = [...arr(spec.data), ...arr(spec.dataFrom)].map((d) => obj(obj(obj(d).sourceRef).storeRef));
    const first = refs[0];
    if (first && str(first.name) && refs.every((r) => r.name === first.name && r.kind === first.kind))
      storeRefIn = first;
    else {
      note('skipped', 'spec.secretStoreRef', 'no single store to read from (a ManagedSecret reads one store)');
      return undefined;
    }
  }
  const kind = str(storeRefIn.kind) ?? 'SecretStore';
  if (kind !== 'SecretStore' && kind !== 'ClusterSecretStore') {
    note('skipped', 'spec.secretStoreRef.kind', `${kind} has no secretsync equivalent`);
    return undefined;
  }
  const main = { kind, name: str(storeRefIn.name) ?? '' };
  const store = ctx.stores.get(storeKey(kind, ctx.namespace, main.name));
  if (store && !store.converted) {
    note('skipped', 'spec.secretStoreRef', `${kind} ${main.name} was not converted (see its lines)`);
    return undefined;
  }
  const prefix = store?.prefix ?? '';

  const data: DataItem[] = [];
  arr(spec.data).forEach((item, i) => {
    const d = obj(item);
    const at = `spec.data[${i}]`;
    const ref = obj(d.remoteRef);
    const secretKey = str(d.secretKey);
    const key = str(ref.key);
    const refusal =
      (!secretKey || !key ? 'needs secretKey and remoteRef.key' : undefined) ??
      sourceStoreRefusal(d.sourceRef, main) ??
      strategiesRefusal(ref);
    if (refusal || !secretKey || !key) {
      note(
        'dropped',
        at,
        `${refusal ?? ''}; the key ${secretKey ?? ''} is left out (after a takeover the Secret keeps the last value ESO wrote, no longer refreshed)`,
      );
      return;
    }
    if (str(ref.nullBytePolicy) === 'Fail')
      note('dropped', `${at}.remoteRef.nullBytePolicy`, 'secretsync does not check values for null bytes');
    const property = str(ref.property);
    if (property && /[*?#|@]/.test(property))
      note(
        'changed',
        `${at}.remoteRef.property`,
        'uses GJSON syntax; secretsync reads a field name or a dotted path (a.b, hosts.0) only',
      );
    const version = versionOf(ref);
    data.push({
      secretKey,
      remoteRef: { key: prefix + key, ...(property ? { property } : {}), ...(version ? { version } : {}) },
    });
  });

  const dataFrom: DataFromItem[] = [];
  arr(spec.dataFrom).forEach((item, i) => {
    const d = obj(item);
    const at = `spec.dataFrom[${i}]`;
    const drop = (why: string) => note('dropped', at, `${why}; its keys are left out`);
    const sourceRefusal = sourceStoreRefusal(d.sourceRef, main);
    if (sourceRefusal) return drop(sourceRefusal);
    if (arr(d.rewrite).length > 0)
      return drop('rewrite renames the keys; secretsync has no key rewriting (a template can rename single keys)');
    if (isObj(d.extract)) {
      const e = d.extract;
      const key = str(e.key);
      const refusal =
        (key ? undefined : 'extract needs a key') ??
        (str(e.property) ? 'extract.property (a part of the entry) has no secretsync equivalent' : undefined) ??
        strategiesRefusal(e);
      if (refusal || !key) return drop(refusal ?? '');
      const version = versionOf(e);
      dataFrom.push({ extract: { key: prefix + key, ...(version ? { version } : {}) } });
      return;
    }
    if (isObj(d.find)) {
      const f = d.find;
      const refusal = strategiesRefusal(f);
      if (refusal) return drop(refusal);
      const path = str(f.path);
      const regexp = str(obj(f.name).regexp);
      let tags = strMap(f.tags);
      if (path && regexp)
        return drop('find sets both path and name.regexp; secretsync finds by one of prefix or nameRegexp');
      if (tags && store?.service === 'awsParameterStore') {
        note('dropped', `${at}.find.tags`, 'secretsync finds by tags in Secrets Manager only');
        tags = undefined;
      }
      if (path || prefix)
        note(
          'changed',
          `${at}.find`,
          'secretsync names found keys relative to the prefix (without it); ESO names them by the whole entry name: check the keys, or let a template name them',
        );
      const find =
        path || (prefix && !regexp)
          ? { prefix: prefix + (path ?? '') }
          : {
              nameRegexp: regexp ? (prefix ? `^${escapeRegexp(prefix)}.*${regexp.replace(/^\^/, '')}` : regexp) : '.*',
            };
      if (regexp && prefix)
        note('changed', `${at}.find.name.regexp`, 'combined with the store prefix into one pattern; check it');
      dataFrom.push({ find: { ...find, ...(tags ? { tags } : {}) } });
      return;
    }
    drop('neither extract nor find');
  });

  if (data.length === 0 && dataFrom.length === 0) {
    note(
      'skipped',
      '',
      'nothing left to read (see the lines above); a ManagedSecret needs at least one data or dataFrom item',
    );
    return undefined;
  }

  const target = convertTarget(obj(spec.target), ctx);
  if (target === null) return undefined;

  const refreshInterval = refreshOf(spec, note);
  return {
    storeRef: { ...(kind === 'ClusterSecretStore' ? { kind } : {}), name: main.name },
    ...(data.length > 0 ? { data } : {}),
    ...(dataFrom.length > 0 ? { dataFrom } : {}),
    ...(Object.keys(target).length > 0 ? { target } : {}),
    ...(refreshInterval !== undefined ? { refreshInterval } : {}),
  };
}

const escapeRegexp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function refreshOf(spec: Obj, note: Noter): string | undefined {
  const policy = str(spec.refreshPolicy);
  if (policy === 'CreatedOnce' || policy === 'OnChange') {
    note(
      'changed',
      'spec.refreshPolicy',
      `${policy}: refreshInterval 0, so secretsync syncs once and again on each spec change`,
    );
    return '0';
  }
  const interval = str(spec.refreshInterval);
  if (isSet(spec.syncWindows))
    note('dropped', 'spec.syncWindows', 'secretsync has no sync windows; refreshSchedule (cron) can time refreshes');
  if (interval === undefined) return undefined; // ESO's default, 1h, is secretsync's too.
  try {
    parseDuration(interval);
    return interval;
  } catch {
    note('dropped', 'spec.refreshInterval', `"${interval}" is not a duration secretsync reads; the default 1h applies`);
    return undefined;
  }
}

const CREATION: Record<string, CreationPolicy> = {
  Owner: 'Owner',
  Orphan: 'Orphan',
  Merge: 'Merge',
  None: 'None',
  CreateOrMerge: 'Orphan',
};

/** The target; null when the ExternalSecret cannot be converted at all (a non-Secret manifest). */
function convertTarget(t: Obj, ctx: SpecContext): TargetSpec | null {
  const { note } = ctx;
  if (isSet(t.manifest)) {
    note('skipped', 'spec.target.manifest', 'writes a resource other than a Secret; secretsync writes Secrets only');
    return null;
  }
  reportUnknown(
    t,
    ['name', 'creationPolicy', 'deletionPolicy', 'template', 'manifest', 'immutable'],
    'spec.target.',
    note,
  );
  const out: TargetSpec = {};
  const name = str(t.name);
  if (name) out.name = name;
  const creation = str(t.creationPolicy);
  if (creation) {
    const mapped = CREATION[creation];
    if (!mapped) note('dropped', 'spec.target.creationPolicy', `${creation} is unknown; Owner applies`);
    else if (mapped !== 'Owner') out.creationPolicy = mapped;
    if (creation === 'CreateOrMerge')
      note(
        'changed',
        'spec.target.creationPolicy',
        'CreateOrMerge becomes Orphan: created when missing, never owned, keys others added kept',
      );
    if (creation === 'Merge')
      note(
        'changed',
        'spec.target.creationPolicy',
        `Merge writes only into a Secret that consents: annotate it with secretsync.io/merge-from=${ctx.name}`,
      );
  }
  const deletion = str(t.deletionPolicy);
  const DELETION: Record<string, DeletionPolicy> = { Retain: 'Retain', Delete: 'Delete', Merge: 'Delete' };
  if (deletion) {
    const mapped = DELETION[deletion];
    if (!mapped) note('dropped', 'spec.target.deletionPolicy', `${deletion} is unknown; Retain applies`);
    else if (mapped !== 'Retain') {
      out.deletionPolicy = mapped;
      note(
        'changed',
        'spec.target.deletionPolicy',
        `${deletion}: when values are gone from the store, secretsync removes their keys from the Secret and keeps the Secret`,
      );
    }
  }
  if (t.immutable === true) out.immutable = true;
  if (isObj(t.template)) convertTemplate(t.template, out, note);
  return out;
}

function convertTemplate(tpl: Obj, out: TargetSpec, note: Noter): void {
  reportUnknown(
    tpl,
    ['type', 'engineVersion', 'metadata', 'mergePolicy', 'data', 'templateFrom'],
    'spec.target.template.',
    note,
  );
  const type = str(tpl.type);
  if (type) {
    const refusal = secretTypeRefusal(type);
    if (refusal) note('dropped', 'spec.target.template.type', refusal);
    else if (type !== 'Opaque') out.type = type;
  }
  const meta = obj(tpl.metadata);
  for (const which of ['labels', 'annotations'] as const) {
    const kept: Record<string, string> = {};
    for (const [k, v] of Object.entries(strMap(meta[which]) ?? {})) {
      const at = `spec.target.template.metadata.${which}.${k}`;
      const refusal = metadataKeyRefusal(k);
      if (refusal) note('dropped', at, refusal);
      else if (v.includes('{{'))
        note('dropped', at, 'a templated value; secretsync sets labels and annotations as written');
      else kept[k] = v;
    }
    if (Object.keys(kept).length > 0) out[which] = kept;
  }
  if (arr(meta.finalizers).length > 0)
    note('dropped', 'spec.target.template.metadata.finalizers', 'secretsync sets no finalizers on Secrets');
  arr(tpl.templateFrom).forEach((_, i) =>
    note(
      'dropped',
      `spec.target.template.templateFrom[${i}]`,
      'templates from ConfigMaps, Secrets or literals have no secretsync equivalent; put them in template.data',
    ),
  );
  const merge = str(tpl.mergePolicy) === 'Merge';
  const goData = strMap(tpl.data) ?? {};
  const data: Record<string, string> = {};
  for (const [key, text] of Object.entries(goData)) {
    const converted = goTemplateToMustache(text);
    if (converted.ok) data[key] = converted.mustache;
    else
      note(
        'dropped',
        `spec.target.template.data.${key}`,
        `uses ${converted.unsupported.slice(0, 200)}; secretsync templates only place values ({{name}}): rewrite it, or the key is left out (after a takeover the Secret keeps the last value ESO wrote, no longer refreshed)`,
      );
  }
  if (Object.keys(data).length > 0) out.template = { data, ...(merge ? { mergePolicy: 'Merge' } : {}) };
  else if (Object.keys(goData).length > 0 && !merge)
    note(
      'changed',
      'spec.target.template',
      'no template key could be carried over: the Secret holds the fetched keys instead of the templated ones',
    );
}

// ---------------------------------------------------------------------------
// The whole input.

/** Every object of the input, with `kind: List` (kubectl get -o yaml) unwrapped. */
function flatten(docs: readonly unknown[]): Obj[] {
  const out: Obj[] = [];
  for (const d of docs) {
    if (!isObj(d)) continue;
    if (d.kind === 'List' || (typeof d.kind === 'string' && d.kind.endsWith('List') && Array.isArray(d.items)))
      out.push(...flatten(arr(d.items)));
    else out.push(d);
  }
  return out;
}

const CONVERTED_KINDS = ['SecretStore', 'ClusterSecretStore', 'ExternalSecret', 'ClusterExternalSecret'];

/** Converts parsed manifests (any order; stores are read first so their ExternalSecrets know them). */
export function convertEso(docs: readonly unknown[], options: ConvertOptions = {}): ConversionResult {
  const notes: ConversionNote[] = [];
  const objects: ConvertedObject[] = [];
  const stores = new Map<string, StoreInfo>();
  const items = flatten(docs).map((doc) => {
    const apiVersion = str(doc.apiVersion) ?? '';
    const kind = str(doc.kind) ?? '';
    const meta = obj(doc.metadata);
    const name = str(meta.name) ?? '';
    const namespace = str(meta.namespace);
    const source = `${kind || 'object'} ${namespace && kind !== 'ClusterSecretStore' && kind !== 'ClusterExternalSecret' ? `${namespace}/` : ''}${name}`;
    const note: Noter = (severity, field, message) => notes.push({ severity, source, field, message });
    return { doc, apiVersion, kind, name, namespace, source, note };
  });
  const eso = items.filter((it) => {
    const [group, version] = it.apiVersion.split('/');
    if (group !== ESO_GROUP) {
      it.note('skipped', '', `${it.apiVersion || 'no apiVersion'}: not an External Secrets Operator object`);
      return false;
    }
    if (!ESO_VERSIONS.includes(version ?? '')) {
      it.note(
        'skipped',
        '',
        `${it.apiVersion} is an older shape; upgrade ESO (its conversion webhook serves v1) and export the v1 objects`,
      );
      return false;
    }
    if (!CONVERTED_KINDS.includes(it.kind)) {
      it.note(
        'skipped',
        '',
        `${it.kind} has no secretsync equivalent (PushSecret, generators and the rest are not converted)`,
      );
      return false;
    }
    if (!it.name) {
      it.note('skipped', 'metadata.name', 'is missing');
      return false;
    }
    return true;
  });
  for (const it of eso) {
    if (it.kind !== 'SecretStore' && it.kind !== 'ClusterSecretStore') continue;
    const { info, object } = convertStore(it.doc, it.kind, it.source, it.apiVersion, it.note);
    stores.set(storeKey(it.kind, it.namespace, it.name), info);
    if (object) objects.push(object);
  }
  for (const it of eso) {
    if (it.kind === 'ExternalSecret') {
      const spec = convertSpec(obj(it.doc.spec), { namespace: it.namespace, stores, note: it.note, name: it.name });
      if (spec)
        objects.push({
          apiVersion: API_VERSION,
          kind: 'ManagedSecret',
          metadata: metadataOf(obj(it.doc.metadata), it.source, it.apiVersion, it.kind),
          spec,
        });
    } else if (it.kind === 'ClusterExternalSecret') {
      objects.push(...convertClusterExternalSecret(it, stores, options));
    }
  }
  return { objects, notes };
}

function convertClusterExternalSecret(
  it: { doc: Obj; apiVersion: string; name: string; source: string; note: Noter },
  stores: Map<string, StoreInfo>,
  options: ConvertOptions,
): ManagedSecret[] {
  const spec = obj(it.doc.spec);
  const name = str(spec.externalSecretName) ?? it.name;
  const namespaces = new Set(strList(spec.namespaces));
  const selectors = [spec.namespaceSelector, ...arr(spec.namespaceSelectors)]
    .map((s) => (s ? labelSelector(s) : undefined))
    .filter((s): s is LabelSelector => s !== undefined);
  if (selectors.length > 0) {
    const given = options.selectedNamespaces?.[it.name];
    const provisioned = strList(obj(it.doc.status).provisionedNamespaces);
    const shown = selectors.map((s) => `"${selectorText(s)}"`).join(' or ');
    if (given) given.forEach((n) => namespaces.add(n));
    else if (provisioned.length > 0) {
      provisioned.forEach((n) => namespaces.add(n));
      it.note(
        'changed',
        'spec.namespaceSelector',
        `namespaces selected by ${shown} taken from status.provisionedNamespaces (${provisioned.join(', ')}); namespaces labelled later get no ManagedSecret`,
      );
    } else
      it.note(
        'skipped',
        'spec.namespaceSelector',
        `namespaces selected by labels ${shown} only a cluster can list: run kubectl get namespaces -l '${selectorText(selectors[0] as LabelSelector)}' -o name and convert again with --namespaces ${it.name}=<ns>,<ns>`,
      );
  }
  if (isSet(spec.refreshTime))
    it.note(
      'dropped',
      'spec.refreshTime',
      "how often ESO re-reads the namespace list; secretsync's objects are listed once, here",
    );
  if (namespaces.size === 0) {
    if (selectors.length === 0) it.note('skipped', 'spec.namespaces', 'selects no namespace');
    return [];
  }
  const extMeta = obj(spec.externalSecretMetadata);
  const out: ManagedSecret[] = [];
  for (const namespace of [...namespaces].sort()) {
    // The same spec in every namespace: its findings are reported once, for the first.
    const note: Noter = out.length === 0 ? it.note : () => undefined;
    const converted = convertSpec(obj(spec.externalSecretSpec), { namespace, stores, note, name });
    if (!converted) break;
    const labels = withoutTrackingLabel(strMap(extMeta.labels));
    const annotations = {
      ...Object.fromEntries(
        Object.entries(strMap(extMeta.annotations) ?? {}).filter(([k]) => !DROPPED_ANNOTATION.test(k)),
      ),
      [ANNOTATION_CONVERTED_FROM]: `${it.apiVersion} ClusterExternalSecret ${it.name}`,
    };
    out.push({
      apiVersion: API_VERSION,
      kind: 'ManagedSecret',
      metadata: { name, namespace, ...(labels ? { labels } : {}), annotations },
      spec: converted,
    });
  }
  return out;
}
