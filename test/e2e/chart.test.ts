// The Helm chart rendered: helm lint, the values schema, what each value
// turns into, the exact RBAC per scope (and the roles aggregated for namespace
// users), and every rendering accepted by a real kube-apiserver (server-side dry
// run), including the restricted Pod Security Standard for the operator's Pod.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildCrds } from '../../src/api/crds.js';
import { ESO_SHORT_NAMES } from '../../src/api/schemas.js';
import { RECEIVER_CREDENTIAL_RULES, RECEIVER_RULES } from '../../src/replication/receiver.js';
import { TestCluster } from '../../tools/testenv/index.js';
import {
  CHART_DIR,
  findObject,
  helmTemplate,
  kubeClients,
  kubectl,
  mustKubectl,
  mustRun,
  parseManifests,
  renderChart,
  tempDir,
  type KubeManifest,
} from './helpers.js';

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Container {
  name: string;
  image: string;
  args: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: { name: string; emptyDir?: object; persistentVolumeClaim?: { claimName: string } }[];
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: object[];
  affinity?: object;
  topologySpreadConstraints?: { topologyKey: string; labelSelector?: { matchLabels: Record<string, string> } }[];
}
type Deployment = KubeManifest & {
  spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { spec: PodSpec } };
};

const deploymentOf = (objects: KubeManifest[]) => findObject(objects, 'Deployment') as Deployment;
const containerOf = (objects: KubeManifest[]) => deploymentOf(objects).spec.template.spec.containers[0] as Container;

/**
 * What the chart's ServiceAccount may do, one "namespace|group|resource[/name]|verb" per
 * permission ("*" for cluster-wide), from the rendered Roles, ClusterRoles and bindings.
 */
function permissions(objects: KubeManifest[], saNamespace: string, saName: string): string[] {
  const rulesOf = (kind: string, name: string, namespace?: string) =>
    ((findObject(objects, kind, name, namespace) as KubeManifest & { rules?: PolicyRule[] }).rules ??
      []) as PolicyRule[];
  const out = new Set<string>();
  for (const binding of objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
    const b = binding as KubeManifest & {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string; namespace: string }[];
    };
    if (!b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === saName && s.namespace === saNamespace))
      continue;
    const scope = b.kind === 'ClusterRoleBinding' ? '*' : (b.metadata.namespace as string);
    const rules = rulesOf(b.roleRef.kind, b.roleRef.name, b.roleRef.kind === 'Role' ? scope : undefined);
    for (const rule of rules)
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs)
            for (const name of rule.resourceNames ?? [''])
              out.add(`${scope}|${group}|${resource}${name ? `/${name}` : ''}|${verb}`);
  }
  return [...out].sort();
}

const expand = (scope: string, group: string, resources: string[], verbs: string[]) =>
  resources.flatMap((r) => verbs.map((v) => `${scope}|${group}|${r}|${v}`));

/** The operator's needs on namespaced resources, in one scope (rollout restarts are off by default). */
const namespacedNeeds = (scope: string, tokens: boolean, rollouts = false) => [
  ...expand(scope, 'secretsync.io', ['managedsecrets', 'secretstores'], ['get', 'list', 'watch']),
  ...expand(scope, 'secretsync.io', ['managedsecrets/status', 'secretstores/status'], ['get', 'patch']),
  // The revoke-leases finalizer of dynamic secrets (dataFrom[].dynamic).
  ...expand(scope, 'secretsync.io', ['managedsecrets'], ['patch']),
  ...expand(scope, '', ['secrets'], ['get', 'list', 'watch', 'create', 'update', 'delete']),
  ...expand(scope, '', ['events'], ['create', 'patch']),
  ...(tokens ? expand(scope, '', ['serviceaccounts/token'], ['create']) : []),
  // Rollout restarts (spec.rolloutRestart): find workloads and patch their template annotation.
  ...(rollouts ? expand(scope, 'apps', ['deployments', 'statefulsets', 'daemonsets'], ['get', 'list', 'patch']) : []),
];
const clusterNeeds = [
  ...expand('*', 'secretsync.io', ['clustersecretstores'], ['get', 'list', 'watch']),
  ...expand('*', 'secretsync.io', ['clustersecretstores/status'], ['get', 'patch']),
  ...expand('*', '', ['namespaces'], ['get', 'list', 'watch']),
  // Replication (replication.enabled): read ReplicationTargets, write their status.
  ...expand('*', 'secretsync.io', ['replicationtargets'], ['get', 'list', 'watch']),
  ...expand('*', 'secretsync.io', ['replicationtargets/status'], ['get', 'patch']),
];
const leaseNeeds = (ns: string) => [
  `${ns}|coordination.k8s.io|leases|create`,
  `${ns}|coordination.k8s.io|leases/secretsync-leader|get`,
  `${ns}|coordination.k8s.io|leases/secretsync-leader|update`,
];

/** A values file exercising every optional part of the chart. */
const everything = {
  watchNamespaces: ['team-a', 'team-b'],
  serviceAccountTokens: { enabled: true },
  caBundleConfigMaps: { enabled: true },
  allowOperatorIdentityForNamespacedStores: true,
  logLevel: 'debug',
  metrics: {
    // Forced: helm template serves no monitoring.coreos.com/v1 unless told (--api-versions).
    serviceMonitor: { enabled: true, force: true, labels: { release: 'prometheus' } },
    prometheusRule: { enabled: true, force: true, alertLabels: { team: 'platform' } },
  },
  networkPolicy: {
    enabled: true,
    metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
    egress: [{ ports: [{ port: 443, protocol: 'TCP' }] }],
  },
  localStore: { persistence: { enabled: true, storageClassName: 'standard', size: '2Gi' } },
  extraEnv: [{ name: 'AWS_REGION', value: 'eu-west-1' }],
  extraArgs: ['--concurrency=4'],
  priorityClassName: 'system-cluster-critical',
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
  affinity: {
    nodeAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 1,
          preference: { matchExpressions: [{ key: 'node-role', operator: 'In', values: ['infra'] }] },
        },
      ],
    },
  },
  topologySpreadConstraints: [
    { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
  ],
  serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/secretsync' } },
  podDisruptionBudget: { minAvailable: 1 },
  podAnnotations: { 'example.com/scrape': 'true' },
  podLabels: { team: 'platform' },
  commonLabels: { 'example.com/owner': 'platform-team' },
  deploymentAnnotations: { 'reloader.stakater.com/auto': 'true' },
  strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
  extraVolumes: [{ name: 'ca-bundle', configMap: { name: 'corporate-ca' } }],
  extraVolumeMounts: [{ name: 'ca-bundle', mountPath: '/etc/ssl/custom', readOnly: true }],
  backup: {
    enabled: true,
    keySecret: { name: 'secretsync-backup-key' },
    includeSynced: true,
    includeLocalStore: true,
    schedule: '0 2 * * *',
    timeZone: 'Europe/Berlin',
  },
  replication: { enabled: true, clusterName: 'eu-central-1' },
  replicationReceiver: { enabled: true, credentials: true },
  rolloutRestarts: { enabled: true, maxConcurrent: 3 },
  rbac: { aggregate: { secretStoresFor: 'admin' } },
  leaderElection: { leaseDuration: '30s', renewDeadline: '20s', retryPeriod: '4s' },
  kubeApi: { requestTimeout: '45s', connectTimeout: '2s', watchIdleTimeout: '2m' },
  syncTimeout: '1m30s',
  providers: { requestTimeout: '5s', connectTimeout: '1500ms' },
  tenancy: {
    allowedEndpoints: ['https://vpce-0123.kms.eu-west-1.vpce.amazonaws.com', '*.vpce.amazonaws.com'],
    localStoreRoot: '/var/lib/secretsync/store',
    minRefreshInterval: '1m',
    maxWorkersPerNamespace: 4,
  },
  limits: {
    maxTemplateBytes: 32768,
    maxSecretBytes: 524288,
    maxKeysPerSecret: 200,
    maxFindEntries: 100,
    maxValueBytes: 262144,
  },
};

/** The env the chart gives the operator for the flags of `secretsync run`, with default values. */
const defaultFlagEnv = {
  SECRETSYNC_ROLLOUT_RESTARTS: 'false',
  SECRETSYNC_LEASE_DURATION: '15s',
  SECRETSYNC_RENEW_DEADLINE: '10s',
  SECRETSYNC_RETRY_PERIOD: '2s',
  SECRETSYNC_KUBE_REQUEST_TIMEOUT: '30s',
  SECRETSYNC_KUBE_CONNECT_TIMEOUT: '5s',
  SECRETSYNC_WATCH_IDLE_TIMEOUT: '90s',
  SECRETSYNC_SYNC_TIMEOUT: '60s',
  SECRETSYNC_PROVIDER_REQUEST_TIMEOUT: '10s',
  SECRETSYNC_PROVIDER_CONNECT_TIMEOUT: '3s',
  SECRETSYNC_LOCAL_STORE_ROOT: '/var/lib/secretsync/store',
  SECRETSYNC_MIN_REFRESH_INTERVAL: '10s',
  SECRETSYNC_MAX_WORKERS_PER_NAMESPACE: '0',
  SECRETSYNC_MAX_TEMPLATE_BYTES: '65536',
  SECRETSYNC_MAX_SECRET_BYTES: '1048576',
  SECRETSYNC_MAX_KEYS_PER_SECRET: '1000',
  SECRETSYNC_MAX_FIND_ENTRIES: '500',
  SECRETSYNC_MAX_VALUE_BYTES: '1048576',
};

const envOf = (objects: KubeManifest[]) =>
  Object.fromEntries(containerOf(objects).env.map((e) => [e.name, e.value ?? e.valueFrom]));

type ClusterRole = KubeManifest & { rules: PolicyRule[] };
const AGGREGATE = 'rbac.authorization.k8s.io/aggregate-to-';
/**
 * What the roles aggregated into a built-in role grant, one "group|resource|verb" per permission:
 * the union of the rules of every rendered ClusterRole labelled aggregate-to-<role>.
 */
function aggregatedInto(objects: KubeManifest[], role: 'view' | 'edit' | 'admin'): string[] {
  const out = new Set<string>();
  for (const o of objects.filter((x) => x.kind === 'ClusterRole' && x.metadata.labels?.[AGGREGATE + role] === 'true'))
    for (const rule of (o as ClusterRole).rules)
      for (const group of rule.apiGroups)
        for (const resource of rule.resources) for (const verb of rule.verbs) out.add(`${group}|${resource}|${verb}`);
  return [...out].sort();
}
const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'];
const READ_VERBS = ['get', 'list', 'watch'];
const ours = (resources: string[], verbs: string[]) =>
  resources.flatMap((r) => verbs.map((v) => `secretsync.io|${r}|${v}`));

describe('the Helm chart, rendered (helm v3.18.0)', function () {
  this.timeout(120_000);

  it('passes helm lint --strict with default, namespaced-scope and all-options values', async () => {
    const { helm } = await kubeClients();
    const dir = tempDir('lint');
    writeFileSync(join(dir, 'namespaced.yaml'), stringify({ watchNamespaces: ['team-a'] }));
    writeFileSync(join(dir, 'everything.yaml'), stringify(everything));
    for (const extra of [[], ['-f', join(dir, 'namespaced.yaml')], ['-f', join(dir, 'everything.yaml')]]) {
      const result = await mustRun(helm, ['lint', '--strict', CHART_DIR, ...extra]);
      expect(result.stdout).to.contain('1 chart(s) linted, 0 chart(s) failed');
    }
  });

  describe('values.schema.json', () => {
    const failsWith = async (args: string[], message: RegExp) => {
      const result = await helmTemplate({ args });
      expect(result.code, `helm template ${args.join(' ')} should fail`).to.not.equal(0);
      expect(result.stderr).to.match(message);
    };

    it('fails a misspelt key with a message that names it', async () => {
      await failsWith(['--set', 'replicaCont=3'], /Additional property replicaCont is not allowed/);
      await failsWith(['--set', 'metrics.serviceMonitr.enabled=true'], /metrics: Additional property serviceMonitr/);
      await failsWith(['--set', 'leaderElection.lease=x'], /leaderElection: Additional property lease is not allowed/);
    });

    it('fails a wrong type or value with a message that names the key', async () => {
      await failsWith(['--set', 'replicaCount=two'], /replicaCount: Invalid type. Expected: integer, given: string/);
      await failsWith(['--set', 'logLevel=verbose'], /logLevel: logLevel must be one of the following/);
      await failsWith(['--set', 'watchNamespaces[0]=Team_A'], /watchNamespaces.0: Does not match pattern/);
      await failsWith(['--set', 'image.pullPolicy=Sometimes'], /image.pullPolicy must be one of the following/);
    });

    it('fails new values of the wrong type or out of bounds, naming the key', async () => {
      await failsWith(['--set', 'syncTimeout=60'], /syncTimeout: Invalid type. Expected: string, given: integer/);
      await failsWith(['--set', 'kubeApi.requestTimeout=30 s'], /kubeApi.requestTimeout: Does not match pattern/);
      await failsWith(
        ['--set-string', 'leaderElection.leaseDuration=15'],
        /leaderElection.leaseDuration: Does not match/,
      );
      await failsWith(['--set', 'limits.maxSecretBytes=2097152'], /limits.maxSecretBytes: Must be less than or equal/);
      await failsWith(['--set', 'limits.maxKeysPerSecret=0'], /limits.maxKeysPerSecret: Must be greater than or equal/);
      await failsWith(
        ['--set', 'tenancy.maxWorkersPerNamespace=-1'],
        /tenancy.maxWorkersPerNamespace: Must be greater/,
      );
      await failsWith(
        ['--set', 'tenancy.localStoreRoot=relative/dir'],
        /tenancy.localStoreRoot: Does not match pattern/,
      );
      // A comma would split one entry into two on its way to the operator.
      await failsWith(
        ['--set-json', 'tenancy.allowedEndpoints=["https://a.example.com,https://b.example.com"]'],
        /tenancy.allowedEndpoints.0: Does not match pattern/,
      );
      await failsWith(
        ['--set', 'tenancy.allowedEndpoints={example.com}'],
        /tenancy.allowedEndpoints.0: Does not match/,
      );
      await failsWith(
        ['--set', 'rbac.aggregate.secretStoresFor=everyone'],
        /rbac.aggregate.secretStoresFor must be one of the following/,
      );
      await failsWith(
        ['--set', 'metrics.prometheusRule.alerts.managedSecretStale.thresholdSeconds=0'],
        /managedSecretStale.thresholdSeconds: Must be greater than or equal to 60/,
      );
    });

    it('refuses lease timings the leader cannot keep, timeouts below their floor, and more workers per namespace than in all', async () => {
      await failsWith(
        ['--set', 'leaderElection.renewDeadline=15s'],
        /leaderElection.renewDeadline \(15s\) must be shorter than leaderElection.leaseDuration \(15s\)/,
      );
      await failsWith(
        ['--set', 'leaderElection.retryPeriod=10s'],
        /leaderElection.retryPeriod \(10s\) must be shorter than leaderElection.renewDeadline \(10s\)/,
      );
      // 1m30s is 90 s: longer than a 1m lease, whatever the unit order.
      await failsWith(
        ['--set', 'leaderElection.leaseDuration=1m', '--set', 'leaderElection.renewDeadline=1m30s'],
        /renewDeadline \(1m30s\) must be shorter/,
      );
      await failsWith(['--set', 'kubeApi.requestTimeout=30ms'], /kubeApi.requestTimeout: 30ms is shorter than 1s/);
      await failsWith(['--set', 'syncTimeout=0s'], /syncTimeout: 0s is shorter than 1s/);
      await failsWith(
        ['--set', 'providers.connectTimeout=50ms'],
        /providers.connectTimeout: 50ms is shorter than 100ms/,
      );
      await failsWith(['--set', 'kubeApi.watchIdleTimeout=5s'], /kubeApi.watchIdleTimeout: 5s is shorter than 10s/);
      await failsWith(
        ['--set', 'tenancy.maxWorkersPerNamespace=17'],
        /tenancy.maxWorkersPerNamespace \(17\) must not exceed concurrency \(16\)/,
      );
      // Fractions and mixed units at the floor pass.
      const ok = await renderChart({
        args: ['--set', 'leaderElection.retryPeriod=0.1s', '--set', 'providers.connectTimeout=100ms'],
      });
      expect(envOf(ok)).to.include({ SECRETSYNC_RETRY_PERIOD: '0.1s', SECRETSYNC_PROVIDER_CONNECT_TIMEOUT: '100ms' });
    });

    it('refuses several replicas without leader election', async () => {
      await failsWith(['--set', 'leaderElection.enabled=false'], /leaderElection.enabled=false needs replicaCount: 1/);
      const single = await renderChart({ args: ['--set', 'leaderElection.enabled=false', '--set', 'replicaCount=1'] });
      expect(containerOf(single).args).to.include('--leader-elect=false');
      // No Lease, no Lease permissions.
      expect(single.some((o) => o.kind === 'Role')).to.equal(false);
    });
  });

  describe('with default values', () => {
    let objects: KubeManifest[];
    before(async () => {
      objects = await renderChart();
    });

    it('renders exactly the default set of objects', () => {
      expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).to.deep.equal(
        [
          'CustomResourceDefinition/clustersecretstores.secretsync.io',
          'CustomResourceDefinition/managedsecrets.secretsync.io',
          'CustomResourceDefinition/replicationtargets.secretsync.io',
          'CustomResourceDefinition/secretstores.secretsync.io',
          'ClusterRole/secretsync-secretsync-system',
          'ClusterRole/secretsync-secretsync-system-edit',
          'ClusterRole/secretsync-secretsync-system-view',
          'ClusterRoleBinding/secretsync-secretsync-system',
          'Deployment/secretsync',
          'PodDisruptionBudget/secretsync',
          'Role/secretsync-operator',
          'RoleBinding/secretsync-operator',
          'Service/secretsync-metrics',
          'ServiceAccount/secretsync',
        ].sort(),
      );
    });

    it('runs 2 replicas with leader election, probes on the metrics port, requests and limits', () => {
      const deployment = deploymentOf(objects);
      expect(deployment.spec.replicas).to.equal(2);
      const c = containerOf(objects);
      expect(c.image).to.equal('ghcr.io/secretsync/secretsync:0.1.0');
      expect(c.args).to.include.members([
        '--leader-elect=true',
        '--lease-name=secretsync-leader',
        '--operator-namespace=secretsync-system',
        '--metrics-address=:8080',
        '--log-level=info',
      ]);
      expect(c.args.some((a) => a.startsWith('--namespaces'))).to.equal(false);
      expect(c.ports).to.deep.equal([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
      expect(c.livenessProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'metrics' });
      expect(c.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'metrics' });
      expect(c.resources.requests).to.have.keys('cpu', 'memory');
      expect(c.resources.limits).to.have.keys('cpu', 'memory');
      const env = Object.fromEntries(c.env.map((e) => [e.name, e.value ?? e.valueFrom]));
      expect(env.POD_NAME).to.deep.equal({ fieldRef: { fieldPath: 'metadata.name' } });
      expect(env.POD_NAMESPACE).to.deep.equal({ fieldRef: { fieldPath: 'metadata.namespace' } });
      expect(env.SECRETSYNC_ALLOW_OPERATOR_IDENTITY_FOR_NAMESPACED_STORES).to.equal('false');
    });

    it("passes every new flag's default as its environment variable, and nothing for an empty endpoint list", () => {
      const env = envOf(objects);
      expect(env).to.include(defaultFlagEnv);
      expect(env).to.not.have.key('SECRETSYNC_ALLOWED_ENDPOINTS');
      // As env, not args: an extraArgs flag still overrides them.
      const flags = Object.keys(defaultFlagEnv).map(
        (name) =>
          `--${name
            .replace(/^SECRETSYNC_/, '')
            .toLowerCase()
            .replaceAll('_', '-')}`,
      );
      expect(flags).to.include.members(['--lease-duration', '--rollout-restarts', '--max-workers-per-namespace']);
      expect(containerOf(objects).args.filter((a) => flags.some((f) => a.startsWith(`${f}=`)))).to.deep.equal([]);
    });

    it('locks the container down: numeric non-root user, read-only root, no capabilities, RuntimeDefault seccomp, /tmp an emptyDir', () => {
      const pod = deploymentOf(objects).spec.template.spec;
      expect(pod.securityContext).to.include({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 });
      expect(pod.securityContext.seccompProfile).to.deep.equal({ type: 'RuntimeDefault' });
      const sc = (pod.containers[0] as Container).securityContext;
      expect(sc).to.include({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        runAsUser: 65532,
        privileged: false,
      });
      expect(sc.capabilities).to.deep.equal({ drop: ['ALL'] });
      expect(sc.seccompProfile).to.deep.equal({ type: 'RuntimeDefault' });
      expect((pod.containers[0] as Container).volumeMounts).to.deep.equal([{ name: 'tmp', mountPath: '/tmp' }]);
      expect(pod.volumes).to.deep.equal([{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }]);
    });

    it('spreads replicas across nodes and keeps one up through voluntary disruptions', () => {
      const pod = deploymentOf(objects).spec.template.spec;
      expect(pod.topologySpreadConstraints).to.deep.equal([
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: deploymentOf(objects).spec.selector.matchLabels },
        },
      ]);
      const pdb = findObject(objects, 'PodDisruptionBudget') as KubeManifest & { spec: object };
      expect(pdb.spec).to.deep.equal({
        maxUnavailable: 1,
        selector: { matchLabels: deploymentOf(objects).spec.selector.matchLabels },
      });
    });

    it('grants exactly the cluster-scope permissions the operator uses, nothing more (no workloads)', () => {
      const perms = permissions(objects, 'secretsync-system', 'secretsync');
      expect(perms).to.deep.equal(
        [...namespacedNeeds('*', false), ...clusterNeeds, ...leaseNeeds('secretsync-system')].sort(),
      );
      expect(perms.filter((p) => p.includes('|apps|'))).to.deep.equal([]);
    });
  });

  describe('roles aggregated into view, edit and admin', () => {
    it('by default: view reads ManagedSecrets and SecretStores, edit and admin also write ManagedSecrets, nobody writes stores', async () => {
      const objects = await renderChart();
      const view = ours(['managedsecrets', 'secretstores'], READ_VERBS);
      expect(aggregatedInto(objects, 'view')).to.deep.equal(view.sort());
      const edit = [...view, ...ours(['managedsecrets'], WRITE_VERBS)].sort();
      expect(aggregatedInto(objects, 'edit')).to.deep.equal(edit);
      expect(aggregatedInto(objects, 'admin')).to.deep.equal(edit);
      // None of them binds anything, and none is itself an aggregation (that would pull in other rules).
      for (const o of objects.filter((x) => x.metadata.name.match(/-(view|edit|admin)$/)))
        expect(o, o.metadata.name).to.not.have.property('aggregationRule');
    });

    it('never aggregates Secrets, ClusterSecretStores, ReplicationTargets or a status subresource', async () => {
      for (const secretStoresFor of ['none', 'admin', 'edit']) {
        const objects = await renderChart({ values: { rbac: { aggregate: { secretStoresFor } } } });
        for (const role of ['view', 'edit', 'admin'] as const) {
          const granted = aggregatedInto(objects, role);
          expect(
            granted.every((p) => p.startsWith('secretsync.io|')),
            `${role}: ${granted.join(', ')}`,
          ).to.equal(true);
          expect(granted.filter((p) => /clustersecretstores|replicationtargets|\/status/.test(p))).to.deep.equal([]);
        }
      }
    });

    it('lets admins, or editors and admins, write SecretStores when rbac.aggregate.secretStoresFor says so', async () => {
      const stores = ours(['secretstores'], WRITE_VERBS);
      const admin = await renderChart({ values: { rbac: { aggregate: { secretStoresFor: 'admin' } } } });
      expect(aggregatedInto(admin, 'admin')).to.include.members(stores);
      expect(aggregatedInto(admin, 'edit')).to.not.include.members(['secretsync.io|secretstores|create']);
      const edit = await renderChart({ values: { rbac: { aggregate: { secretStoresFor: 'edit' } } } });
      expect(aggregatedInto(edit, 'edit')).to.include.members(stores);
      expect(aggregatedInto(edit, 'admin')).to.include.members(stores);
      expect(aggregatedInto(edit, 'view')).to.deep.equal(ours(['managedsecrets', 'secretstores'], READ_VERBS).sort());
    });

    it('creates none with rbac.aggregate.enabled=false or rbac.create=false, in either scope', async () => {
      for (const values of [
        { rbac: { aggregate: { enabled: false } } },
        { rbac: { create: false } },
        { rbac: { aggregate: { enabled: false } }, watchNamespaces: ['team-a'] },
      ]) {
        const objects = await renderChart({ values });
        for (const role of ['view', 'edit', 'admin'] as const)
          expect(aggregatedInto(objects, role), JSON.stringify(values)).to.deep.equal([]);
      }
      const namespaced = await renderChart({ values: { watchNamespaces: ['team-a'] } });
      expect(aggregatedInto(namespaced, 'edit')).to.include('secretsync.io|managedsecrets|create');
    });
  });

  describe('the events webhook (events.webhook.*)', () => {
    it('is off by default: no port, no flag, no Service', async () => {
      const objects = await renderChart();
      const env = (containerOf(objects).env ?? []) as { name: string }[];
      expect(env.map((e) => e.name)).to.not.include('SECRETSYNC_EVENTS_WEBHOOK_PORT');
      expect(objects.some((o) => o.metadata.name === 'secretsync-events-webhook')).to.equal(false);
    });

    it('serves the webhook on its own port, with its Service and an ingress rule from events.webhook.from', async () => {
      const from = [{ podSelector: { matchLabels: { app: 'ci' } } }];
      const objects = await renderChart({
        values: { events: { webhook: { enabled: true, from } }, networkPolicy: { enabled: true } },
      });
      const container = containerOf(objects) as { env?: { name: string; value?: string }[]; ports?: object[] };
      expect(container.env).to.deep.include.members([
        { name: 'SECRETSYNC_EVENTS_WEBHOOK_PORT', value: '8090' },
        { name: 'SECRETSYNC_EVENTS_WEBHOOK_SECRET', value: 'secretsync-events-webhook' },
        { name: 'SECRETSYNC_LABEL_LEADER_POD', value: 'true' },
      ]);
      expect(container.ports).to.deep.include({ name: 'events-webhook', containerPort: 8090, protocol: 'TCP' });
      const svc = findObject(objects, 'Service', 'secretsync-events-webhook') as KubeManifest & {
        spec: { type: string; ports: object[]; selector: Record<string, string> };
      };
      expect(svc.spec.type).to.equal('ClusterIP');
      // Only the leader answers notifications: the Service selects the Pod it labels.
      expect(svc.spec.selector).to.include({ 'secretsync.io/leader': 'true' });
      const role = findObject(objects, 'Role', 'secretsync-operator') as KubeManifest & {
        rules: { resources: string[]; verbs: string[] }[];
      };
      expect(role.rules).to.deep.include({ apiGroups: [''], resources: ['pods'], verbs: ['patch'] });
      expect(svc.spec.ports).to.deep.equal([
        { name: 'events-webhook', port: 8090, targetPort: 'events-webhook', protocol: 'TCP' },
      ]);
      const np = findObject(objects, 'NetworkPolicy') as KubeManifest & { spec: { ingress: object[] } };
      expect(np.spec.ingress).to.deep.equal([
        { ports: [{ port: 'metrics', protocol: 'TCP' }] },
        { ports: [{ port: 'events-webhook', protocol: 'TCP' }], from },
      ]);
      expect(container.env?.map((e) => e.name)).to.not.include('SECRETSYNC_EVENTS_IBM_EN_SECRET');
    });

    it('events.webhook.ibmEventNotifications names the Secret of the IBM Event Notifications token', async () => {
      const objects = await renderChart({
        values: {
          events: { webhook: { enabled: true, ibmEventNotifications: { enabled: true, secretName: 'en-token' } } },
        },
      });
      const env = (containerOf(objects).env ?? []) as { name: string; value?: string }[];
      expect(env).to.deep.include({ name: 'SECRETSYNC_EVENTS_IBM_EN_SECRET', value: 'en-token' });
      // Without the webhook there is nothing to accept them on.
      const off = await renderChart({ values: { events: { webhook: { ibmEventNotifications: { enabled: true } } } } });
      expect(((containerOf(off).env ?? []) as { name: string }[]).map((e) => e.name)).to.not.include(
        'SECRETSYNC_EVENTS_IBM_EN_SECRET',
      );
    });
  });

  describe('replication', () => {
    it('is on by default with cluster name "default"; replication.enabled=false drops the flag and the rules', async () => {
      const on = await renderChart();
      expect(containerOf(on).args).to.include.members(['--replication=true', '--cluster-name=default']);
      expect(on.some((o) => o.metadata.name.includes('replication-receiver'))).to.equal(false);
      const off = await renderChart({ values: { replication: { enabled: false }, watchNamespaces: ['team-a'] } });
      expect(containerOf(off).args).to.include('--replication=false');
      const perms = permissions(off, 'secretsync-system', 'secretsync');
      expect(perms.filter((p) => p.includes('replicationtargets'))).to.deep.equal([]);
      // Events about ClusterSecretStores still need the default namespace.
      expect(perms.filter((p) => p.startsWith('default|'))).to.deep.equal([
        'default||events|create',
        'default||events|patch',
      ]);
    });

    it('gives the receiver no access to Secrets without replicationReceiver.credentials', async () => {
      const objects = await renderChart({ values: { replicationReceiver: { enabled: true } } });
      const perms = permissions(objects, 'secretsync-system', 'secretsync-replication-receiver');
      expect(perms).to.deep.equal(
        RECEIVER_RULES.flatMap((r) => r.apiGroups.flatMap((g) => expand('*', g, r.resources, r.verbs))).sort(),
      );
      expect(perms.some((p) => p.includes('||secrets|'))).to.equal(false);
    });

    it('refuses a cluster name that is not a label value', async () => {
      const result = await helmTemplate({ args: ['--set', 'replication.clusterName=not a name'] });
      expect(result.code).to.not.equal(0);
      expect(result.stderr).to.match(/replication.clusterName: Does not match pattern/);
    });
  });

  describe('with watchNamespaces (namespaced scope)', () => {
    it('grants Secrets and our namespaced kinds only in those namespaces, and passes --namespaces', async () => {
      const objects = await renderChart({ values: { watchNamespaces: ['team-a', 'team-b'] } });
      expect(containerOf(objects).args).to.include('--namespaces=team-a,team-b');
      expect(permissions(objects, 'secretsync-system', 'secretsync')).to.deep.equal(
        [
          ...namespacedNeeds('team-a', false),
          ...namespacedNeeds('team-b', false),
          ...clusterNeeds,
          ...leaseNeeds('secretsync-system'),
          // Its own namespace: the HMAC key Secret, Events about ClusterSecretStores, their master keys.
          ...expand('secretsync-system', '', ['secrets'], ['get', 'create']),
          ...expand('secretsync-system', '', ['events'], ['create', 'patch']),
          // Events about ReplicationTargets, which the API server takes only in default.
          ...expand('default', '', ['events'], ['create', 'patch']),
        ].sort(),
      );
      const clusterRole = findObject(objects, 'ClusterRole') as KubeManifest & { rules: PolicyRule[] };
      expect(clusterRole.rules.flatMap((r) => r.resources)).to.not.include('secrets');
    });

    it('adds serviceaccounts/token only with serviceAccountTokens.enabled, in the same scope', async () => {
      const objects = await renderChart({
        values: { watchNamespaces: ['team-a'], serviceAccountTokens: { enabled: true } },
      });
      const perms = permissions(objects, 'secretsync-system', 'secretsync');
      expect(perms.filter((p) => p.includes('serviceaccounts'))).to.deep.equal([
        'secretsync-system||serviceaccounts/token|create',
        'team-a||serviceaccounts/token|create',
      ]);
      const cluster = permissions(
        await renderChart({ values: { serviceAccountTokens: { enabled: true } } }),
        'secretsync-system',
        'secretsync',
      );
      expect(cluster.filter((p) => p.includes('serviceaccounts'))).to.deep.equal(['*||serviceaccounts/token|create']);
    });

    it('adds get on configmaps only with caBundleConfigMaps.enabled, in the same scope', async () => {
      const objects = await renderChart({
        values: { watchNamespaces: ['team-a'], caBundleConfigMaps: { enabled: true } },
      });
      const perms = permissions(objects, 'secretsync-system', 'secretsync');
      expect(perms.filter((p) => p.includes('configmaps'))).to.deep.equal([
        'secretsync-system||configmaps|get',
        'team-a||configmaps|get',
      ]);
      const cluster = permissions(
        await renderChart({ values: { caBundleConfigMaps: { enabled: true } } }),
        'secretsync-system',
        'secretsync',
      );
      expect(cluster.filter((p) => p.includes('configmaps'))).to.deep.equal(['*||configmaps|get']);
      const off = permissions(await renderChart({ values: {} }), 'secretsync-system', 'secretsync');
      expect(off.filter((p) => p.includes('configmaps'))).to.deep.equal([]);
    });

    it('with sharding.enabled: shard Leases and the change relay ConfigMap (by name, but for create) in its own namespace only', async () => {
      for (const values of [{}, { watchNamespaces: ['team-a'] }]) {
        const off = permissions(await renderChart({ values }), 'secretsync-system', 'secretsync');
        expect(off.filter((p) => p.includes('configmaps'))).to.deep.equal([]);
        const on = permissions(
          await renderChart({ values: { ...values, sharding: { enabled: true } } }),
          'secretsync-system',
          'secretsync',
        );
        expect(on.filter((p) => p.includes('configmaps'))).to.deep.equal(
          [
            'secretsync-system||configmaps|create',
            ...expand('secretsync-system', '', ['configmaps/secretsync-changes'], ['get', 'list', 'watch', 'update']),
          ].sort(),
        );
        expect(on.filter((p) => p.includes('|leases|'))).to.deep.equal(
          expand(
            'secretsync-system',
            'coordination.k8s.io',
            ['leases'],
            ['get', 'list', 'create', 'update', 'delete'],
          ).sort(),
        );
      }
      // Without leader election the Role exists for sharding alone.
      const noLeader = permissions(
        await renderChart({
          values: { sharding: { enabled: true }, leaderElection: { enabled: false }, replicaCount: 1 },
        }),
        'secretsync-system',
        'secretsync',
      );
      expect(noLeader).to.include('secretsync-system||configmaps/secretsync-changes|watch');
    });

    it('grants the workload rules only with rolloutRestarts.enabled, in the same scope, and tells the operator either way', async () => {
      const workloads = (scope: string) =>
        expand(scope, 'apps', ['deployments', 'statefulsets', 'daemonsets'], ['get', 'list', 'patch']).sort();
      for (const [values, scope] of [
        [{}, '*'],
        [{ watchNamespaces: ['team-a'] }, 'team-a'],
      ] as const) {
        const off = await renderChart({ values });
        expect(permissions(off, 'secretsync-system', 'secretsync').filter((p) => p.includes('|apps|'))).to.deep.equal(
          [],
        );
        expect(envOf(off).SECRETSYNC_ROLLOUT_RESTARTS).to.equal('false');
        const on = await renderChart({ values: { ...values, rolloutRestarts: { enabled: true, maxConcurrent: 3 } } });
        expect(permissions(on, 'secretsync-system', 'secretsync').filter((p) => p.includes('|apps|'))).to.deep.equal(
          workloads(scope),
        );
        expect(envOf(on).SECRETSYNC_ROLLOUT_RESTARTS).to.equal('true');
        expect(containerOf(on).args).to.include('--max-concurrent-restarts=3');
      }
    });

    it('names cluster-scoped objects after the release namespace, so one release per team does not collide', async () => {
      const a = await renderChart({ namespace: 'team-a', values: { watchNamespaces: ['team-a'] } });
      const b = await renderChart({ namespace: 'team-b', values: { watchNamespaces: ['team-b'] } });
      const clusterScoped = (objs: KubeManifest[]) =>
        objs.filter((o) => o.kind.startsWith('Cluster')).map((o) => `${o.kind}/${o.metadata.name}`);
      // The operator's ClusterRole and binding, and the view and edit roles for namespace users.
      expect(clusterScoped(a)).to.have.length(4);
      expect(clusterScoped(a)).to.not.have.members(clusterScoped(b));
    });
  });

  describe('CRDs as templates (crds.install, crds.keep)', () => {
    type Crd = KubeManifest & { spec: unknown };
    const crdsOf = (objects: KubeManifest[]) => objects.filter((o): o is Crd => o.kind === 'CustomResourceDefinition');

    it('renders the generated CRDs with the release labels, kept on uninstall', async () => {
      const crds = crdsOf(await renderChart({ values: { commonLabels: { team: 'platform' } } }));
      const generated = buildCrds();
      expect(crds.map((c) => c.metadata.name).sort()).to.deep.equal(generated.map((c) => c.metadata.name).sort());
      for (const crd of crds) {
        const want = generated.find((g) => g.metadata.name === crd.metadata.name);
        // The spec exactly as in crds/ (descriptions with {{ }} untouched by the template engine).
        expect(crd.spec, crd.metadata.name).to.deep.equal(JSON.parse(JSON.stringify(want?.spec)));
        expect(crd.metadata.annotations).to.deep.equal({ 'helm.sh/resource-policy': 'keep' });
        expect(crd.metadata.labels).to.include({
          'app.kubernetes.io/instance': 'secretsync',
          'app.kubernetes.io/managed-by': 'Helm',
          'app.kubernetes.io/part-of': 'secretsync',
          team: 'platform',
        });
      }
      const managed = crds.find((c) => c.metadata.name === 'managedsecrets.secretsync.io');
      expect(JSON.stringify(managed?.spec)).to.contain('postgres://{{ username }}:{{ password }}@db/app');
    });

    it('drops the keep annotation with crds.keep=false, and every CRD with crds.install=false', async () => {
      const unkept = crdsOf(await renderChart({ args: ['--set', 'crds.keep=false'] }));
      expect(unkept).to.have.length(4);
      for (const crd of unkept) expect(crd.metadata.annotations, crd.metadata.name).to.equal(undefined);
      const none = await renderChart({ args: ['--set', 'crds.install=false'] });
      expect(crdsOf(none)).to.deep.equal([]);
      expect(none.map((o) => o.kind)).to.include('Deployment');
    });

    it("serves short names that are not External Secrets Operator's, all under the secretsync category", async () => {
      const crds = crdsOf(await renderChart()) as (KubeManifest & {
        spec: { names: { kind: string; shortNames: string[]; categories: string[] } };
      })[];
      const names = Object.fromEntries(crds.map((c) => [c.spec.names.kind, c.spec.names.shortNames]));
      expect(names).to.deep.equal({
        SecretStore: ['sstore'],
        ClusterSecretStore: ['csstore'],
        ManagedSecret: ['ms'],
        ReplicationTarget: ['rtarget'],
      });
      for (const crd of crds) expect(crd.spec.names.categories).to.deep.equal(['secretsync']);
      for (const eso of ESO_SHORT_NAMES) expect(Object.values(names).flat()).to.not.include(eso);
    });
  });

  describe('values users of other operators expect', () => {
    it("puts commonLabels on every object and the Pods, without overriding the chart's own labels", async () => {
      const objects = await renderChart({
        values: { commonLabels: { team: 'platform', 'app.kubernetes.io/name': 'other' }, podLabels: { tier: 'ops' } },
      });
      expect(objects.length).to.be.greaterThan(10);
      for (const o of objects) {
        expect(o.metadata.labels, `${o.kind}/${o.metadata.name}`).to.include({ team: 'platform' });
        expect(o.metadata.labels?.['app.kubernetes.io/name'], `${o.kind}/${o.metadata.name}`).to.equal('secretsync');
      }
      const deployment = deploymentOf(objects) as Deployment & {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      expect(deployment.spec.template.metadata.labels).to.deep.equal({
        ...deployment.spec.selector.matchLabels,
        team: 'platform',
        tier: 'ops',
      });
    });

    it('sets deployment annotations, the update strategy, extra volumes and mounts', async () => {
      const objects = await renderChart({ values: everything });
      const deployment = deploymentOf(objects) as Deployment & { spec: { strategy?: object } };
      expect(deployment.metadata.annotations).to.deep.equal(everything.deploymentAnnotations);
      expect(deployment.spec.strategy).to.deep.equal(everything.strategy);
      const pod = deployment.spec.template.spec;
      expect(pod.volumes.at(-1)).to.deep.equal(everything.extraVolumes[0]);
      expect((pod.containers[0] as Container).volumeMounts.at(-1)).to.deep.equal(everything.extraVolumeMounts[0]);
      // Defaults: none of them.
      const plain = deploymentOf(await renderChart()) as Deployment & { spec: { strategy?: object } };
      expect(plain.metadata.annotations).to.equal(undefined);
      expect(plain.spec.strategy).to.equal(undefined);
    });

    it('leaves out the fixed UID, GID and fsGroup with fixedUid=false (OpenShift), keeping the rest of the lock-down', async () => {
      const pod = deploymentOf(await renderChart({ args: ['--set', 'fixedUid=false'] })).spec.template.spec;
      expect(pod.securityContext).to.deep.equal({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect((pod.containers[0] as Container).securityContext).to.deep.equal({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        privileged: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    });

    it('refuses a wrong strategy, a mount without a path and a non-string label', async () => {
      for (const [args, message] of [
        [['--set', 'strategy.type=Sometimes'], /strategy.type must be one of the following/],
        [['--set', 'strategy.rollingUpdate.maxSurg=1'], /Additional property maxSurg is not allowed/],
        [
          ['--set-json', 'extraVolumeMounts=[{"name":"ca"}]'],
          /extraVolumeMounts.0: missing property 'mountPath'|mountPath is required/,
        ],
        [['--set-json', 'commonLabels={"team":1}'], /commonLabels.team: Invalid type/],
        [['--set', 'crds.instal=true'], /crds: Additional property instal is not allowed/],
      ] as const) {
        const result = await helmTemplate({ args: [...args] });
        expect(result.code, args.join(' ')).to.not.equal(0);
        expect(result.stderr).to.match(message);
      }
    });
  });

  describe('the backup CronJob (backup.*)', () => {
    type CronJob = KubeManifest & {
      spec: {
        schedule: string;
        timeZone?: string;
        concurrencyPolicy: string;
        jobTemplate: { spec: { template: { spec: PodSpec } } };
      };
    };
    const cronJobOf = (objects: KubeManifest[]) => findObject(objects, 'CronJob') as CronJob;

    it('is off by default', async () => {
      expect((await renderChart()).filter((o) => o.kind === 'CronJob')).to.deep.equal([]);
    });

    it('backs up with the key file, synced Secrets and the local store read-only, under a list-only account', async () => {
      const objects = await renderChart({ values: everything });
      const cron = cronJobOf(objects);
      expect(cron.spec).to.include({ schedule: '0 2 * * *', timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid' });
      const pod = cron.spec.jobTemplate.spec.template.spec;
      const c = pod.containers[0] as Container & { command: string[] };
      expect(c.command).to.deep.equal(['/nodejs/bin/node', 'bin/secretsync.js', 'backup']);
      expect(c.args).to.deep.equal([
        '--out=/backups/$(JOB_NAME).backup',
        '--key-file=/etc/secretsync-backup/key',
        '--include-synced',
        '--include-local-store',
        '--local-store-dir=/var/lib/secretsync/store',
        '--force',
      ]);
      expect(c.volumeMounts).to.deep.include({ name: 'store', mountPath: '/var/lib/secretsync/store', readOnly: true });
      expect(pod.volumes).to.deep.include({
        name: 'store',
        persistentVolumeClaim: { claimName: 'secretsync-store', readOnly: true },
      });
      expect(pod.volumes).to.deep.include({
        name: 'backups',
        persistentVolumeClaim: { claimName: 'secretsync-backup' },
      });
      const claim = findObject(objects, 'PersistentVolumeClaim', 'secretsync-backup');
      expect(claim.metadata.annotations).to.deep.equal({ 'helm.sh/resource-policy': 'keep' });
      expect(permissions(objects, 'secretsync-system', 'secretsync-backup')).to.deep.equal(
        [
          ...expand(
            '*',
            'secretsync.io',
            ['secretstores', 'clustersecretstores', 'managedsecrets', 'replicationtargets'],
            ['list'],
          ),
          '*||secrets|list',
        ].sort(),
      );
    });

    it('uses a KMS key instead, and refuses neither or both, or the local store without its volume', async () => {
      const kms = await renderChart({ values: { backup: { enabled: true, kmsKey: 'alias/secretsync-backup' } } });
      const c = cronJobOf(kms).spec.jobTemplate.spec.template.spec.containers[0] as Container;
      expect(c.args).to.include('--kms-key=alias/secretsync-backup');
      expect(c.args.some((a) => a.startsWith('--key-file'))).to.equal(false);
      for (const values of [
        { backup: { enabled: true } },
        { backup: { enabled: true, kmsKey: 'alias/x', keySecret: { name: 'k' } } },
      ]) {
        const result = await helmTemplate({ values });
        expect(result.code).to.not.equal(0);
        expect(result.stderr).to.contain('backup.enabled needs exactly one of backup.keySecret.name');
      }
      const noStore = await helmTemplate({
        values: { backup: { enabled: true, kmsKey: 'alias/x', includeLocalStore: true } },
      });
      expect(noStore.stderr).to.contain('backup.includeLocalStore needs localStore.persistence.enabled');
    });

    it('writes to s3://bucket/prefix<job>.backup with backup.s3.bucket, with no claim, and refuses a bad bucket or prefix', async () => {
      const s3 = {
        bucket: 'acme-backups',
        prefix: 'secretsync/prod/',
        region: 'eu-west-1',
        endpoint: 'https://minio.example.com:9000',
      };
      const objects = await renderChart({
        values: {
          backup: {
            enabled: true,
            kmsKey: 'alias/secretsync-backup',
            s3,
            serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/backup' },
          },
        },
      });
      const pod = cronJobOf(objects).spec.jobTemplate.spec.template.spec;
      const c = pod.containers[0] as Container;
      expect(c.args).to.deep.equal([
        '--out=s3://acme-backups/secretsync/prod/$(JOB_NAME).backup',
        '--s3-region=eu-west-1',
        '--s3-endpoint=https://minio.example.com:9000',
        '--kms-key=alias/secretsync-backup',
        '--force',
      ]);
      expect(objects.filter((o) => o.kind === 'PersistentVolumeClaim')).to.deep.equal([]);
      expect((c.volumeMounts ?? []).map((m) => m.name)).to.deep.equal(['tmp']);
      expect((pod.volumes ?? []).map((v) => v.name)).to.deep.equal(['tmp']);
      expect(findObject(objects, 'ServiceAccount', 'secretsync-backup').metadata.annotations).to.deep.equal({
        'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/backup',
      });
      // Only the bucket: region and endpoint come from the environment (IRSA sets AWS_REGION).
      const bare = await renderChart({
        values: { backup: { enabled: true, kmsKey: 'alias/x', s3: { bucket: 'acme-backups' } } },
      });
      const bareArgs = (cronJobOf(bare).spec.jobTemplate.spec.template.spec.containers[0] as Container).args;
      expect(bareArgs.filter((a) => a.startsWith('--out') || a.startsWith('--s3'))).to.deep.equal([
        '--out=s3://acme-backups/$(JOB_NAME).backup',
      ]);
      for (const [s3Values, message] of [
        [{ bucket: 'Acme_Backups' }, /backup.s3.bucket: Does not match pattern/],
        [{ bucket: 'acme-backups', prefix: '/secretsync/' }, /backup.s3.prefix: Does not match pattern/],
        [{ bucket: 'acme-backups', endpoint: 'minio:9000' }, /backup.s3.endpoint: Does not match pattern/],
        [{ bucket: 'acme-backups', bukket: 'x' }, /Additional property bukket is not allowed/],
      ] as const) {
        const result = await helmTemplate({ values: { backup: { enabled: true, kmsKey: 'alias/x', s3: s3Values } } });
        expect(result.code, JSON.stringify(s3Values)).to.not.equal(0);
        expect(result.stderr).to.match(message);
      }
    });
  });

  describe('ServiceMonitor and PrometheusRule: only where monitoring.coreos.com/v1 is served', () => {
    const kinds = async (values: object, args: string[] = []) =>
      (await renderChart({ values, args }))
        .map((o) => o.kind)
        .filter((k) => k === 'ServiceMonitor' || k === 'PrometheusRule')
        .sort();
    const on = { metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } } };

    it('leaves both out on a cluster without the API, so the install does not fail', async () => {
      expect(await kinds(on)).to.deep.equal([]);
    });

    it('renders both when the cluster serves it (helm template --api-versions monitoring.coreos.com/v1)', async () => {
      expect(await kinds(on, ['--api-versions', 'monitoring.coreos.com/v1'])).to.deep.equal([
        'PrometheusRule',
        'ServiceMonitor',
      ]);
      // Served but not enabled: none.
      expect(await kinds({}, ['--api-versions', 'monitoring.coreos.com/v1'])).to.deep.equal([]);
    });

    it('renders each when forced, whatever the cluster serves', async () => {
      const forced = (key: string) => ({
        metrics: { ...on.metrics, [key]: { enabled: true, force: true } },
      });
      expect(await kinds(forced('serviceMonitor'))).to.deep.equal(['ServiceMonitor']);
      expect(await kinds(forced('prometheusRule'))).to.deep.equal(['PrometheusRule']);
    });
  });

  describe('options', () => {
    let objects: KubeManifest[];
    before(async () => {
      objects = await renderChart({ values: everything });
    });

    it('turns each option into the right field', () => {
      const pod = deploymentOf(objects).spec.template.spec;
      const c = containerOf(objects);
      expect(c.args.at(-1)).to.equal('--concurrency=4');
      expect(c.args).to.include('--log-level=debug');
      const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
      expect(env).to.include({
        SECRETSYNC_ALLOW_OPERATOR_IDENTITY_FOR_NAMESPACED_STORES: 'true',
        AWS_REGION: 'eu-west-1',
        SECRETSYNC_STORE_DIR: '/var/lib/secretsync/store',
        SECRETSYNC_ROLLOUT_RESTARTS: 'true',
        SECRETSYNC_LEASE_DURATION: '30s',
        SECRETSYNC_RENEW_DEADLINE: '20s',
        SECRETSYNC_RETRY_PERIOD: '4s',
        SECRETSYNC_KUBE_REQUEST_TIMEOUT: '45s',
        SECRETSYNC_KUBE_CONNECT_TIMEOUT: '2s',
        SECRETSYNC_WATCH_IDLE_TIMEOUT: '2m',
        SECRETSYNC_SYNC_TIMEOUT: '1m30s',
        SECRETSYNC_PROVIDER_REQUEST_TIMEOUT: '5s',
        SECRETSYNC_PROVIDER_CONNECT_TIMEOUT: '1500ms',
        SECRETSYNC_ALLOWED_ENDPOINTS: 'https://vpce-0123.kms.eu-west-1.vpce.amazonaws.com,*.vpce.amazonaws.com',
        SECRETSYNC_LOCAL_STORE_ROOT: '/var/lib/secretsync/store',
        SECRETSYNC_MIN_REFRESH_INTERVAL: '1m',
        SECRETSYNC_MAX_WORKERS_PER_NAMESPACE: '4',
        SECRETSYNC_MAX_TEMPLATE_BYTES: '32768',
        SECRETSYNC_MAX_SECRET_BYTES: '524288',
        SECRETSYNC_MAX_KEYS_PER_SECRET: '200',
        SECRETSYNC_MAX_FIND_ENTRIES: '100',
        SECRETSYNC_MAX_VALUE_BYTES: '262144',
      });
      // Every variable once: extraEnv could otherwise shadow or be shadowed silently.
      const names = c.env.map((e) => e.name);
      expect(names).to.have.length(new Set(names).size);
      expect(pod.priorityClassName).to.equal('system-cluster-critical');
      expect(pod.nodeSelector).to.deep.equal(everything.nodeSelector);
      expect(pod.tolerations).to.deep.equal(everything.tolerations);
      expect(pod.affinity).to.deep.equal(everything.affinity);
      expect(pod.topologySpreadConstraints?.[0]?.topologyKey).to.equal('topology.kubernetes.io/zone');
      expect(pod.topologySpreadConstraints?.[0]?.labelSelector).to.deep.equal({
        matchLabels: deploymentOf(objects).spec.selector.matchLabels,
      });
      const sa = findObject(objects, 'ServiceAccount', 'secretsync');
      expect(sa.metadata.annotations).to.deep.equal(everything.serviceAccount.annotations);
      expect((findObject(objects, 'PodDisruptionBudget') as KubeManifest & { spec: object }).spec).to.include({
        minAvailable: 1,
      });
    });

    it('mounts the local store claim at /var/lib/secretsync/store, kept on uninstall', () => {
      const pvc = findObject(objects, 'PersistentVolumeClaim', 'secretsync-store') as KubeManifest & {
        spec: { storageClassName: string; resources: { requests: { storage: string } } };
      };
      expect(pvc.metadata.annotations).to.deep.equal({ 'helm.sh/resource-policy': 'keep' });
      expect(pvc.spec.storageClassName).to.equal('standard');
      expect(pvc.spec.resources.requests.storage).to.equal('2Gi');
      const pod = deploymentOf(objects).spec.template.spec;
      expect(pod.volumes).to.deep.include({ name: 'store', persistentVolumeClaim: { claimName: pvc.metadata.name } });
      expect((pod.containers[0] as Container).volumeMounts).to.deep.include({
        name: 'store',
        mountPath: '/var/lib/secretsync/store',
      });
    });

    it('uses an existing claim without creating one', async () => {
      const objs = await renderChart({
        values: { localStore: { persistence: { enabled: true, existingClaim: 'my-store' } } },
      });
      expect(objs.some((o) => o.kind === 'PersistentVolumeClaim')).to.equal(false);
      expect(deploymentOf(objs).spec.template.spec.volumes).to.deep.include({
        name: 'store',
        persistentVolumeClaim: { claimName: 'my-store' },
      });
    });

    it('pins the image by digest when one is given', async () => {
      const digest = `sha256:${'a'.repeat(64)}`;
      const objs = await renderChart({ args: ['--set', `image.digest=${digest}`] });
      expect(containerOf(objs).image).to.equal(`ghcr.io/secretsync/secretsync@${digest}`);
    });

    it('scrapes the metrics Service with a ServiceMonitor', () => {
      const sm = findObject(objects, 'ServiceMonitor') as KubeManifest & {
        spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
      };
      const svc = findObject(objects, 'Service') as KubeManifest & { spec: { ports: { name: string }[] } };
      for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels?.[k]).to.equal(v);
      expect(sm.spec.endpoints).to.deep.equal([
        { port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' },
      ]);
      expect(svc.spec.ports[0]?.name).to.equal('metrics');
      expect(sm.metadata.labels?.release).to.equal('prometheus');
    });

    it('alerts on failing syncs, a store not ready, no leader, overdue or stale ManagedSecrets and replication lag', () => {
      const rule = findObject(objects, 'PrometheusRule') as KubeManifest & {
        spec: { groups: { rules: { alert: string; expr: string; for: string; labels: Record<string, string> }[] }[] };
      };
      const rules = rule.spec.groups.flatMap((g) => g.rules);
      const sel = 'namespace="secretsync-system", job="secretsync-metrics"';
      expect(Object.fromEntries(rules.map((r) => [r.alert, r.expr]))).to.deep.equal({
        SecretsyncSyncsFailing: `sum(rate(secretsync_syncs_total{result="error", ${sel}}[5m])) > 0`,
        SecretsyncStoreNotReady: `max by (kind) (secretsync_stores{ready="False", ${sel}}) > 0`,
        SecretsyncNoLeader: `(max(secretsync_leader{${sel}}) == 0) or absent(secretsync_leader{${sel}})`,
        SecretsyncManagedSecretsOverdue: `max(secretsync_overdue_managed_secrets{${sel}}) > 0`,
        SecretsyncManagedSecretStale:
          'time() - max by (namespace, exported_namespace, name) ' +
          `(secretsync_managedsecret_last_success_timestamp_seconds{${sel}}) > 10800`,
        SecretsyncReplicationLagging: `max by (target) (secretsync_replication_lag_seconds{${sel}}) > 600`,
      });
      for (const r of rules) expect(r.labels).to.include({ team: 'platform' });
      expect(rules.find((r) => r.alert === 'SecretsyncNoLeader')?.labels.severity).to.equal('critical');
      expect(rules.find((r) => r.alert === 'SecretsyncManagedSecretStale')?.for).to.equal('10m');
    });

    it('takes the stale threshold from its value, and drops the alert when turned off', async () => {
      const rulesOf = async (stale: object) => {
        const objs = await renderChart({
          values: { metrics: { prometheusRule: { enabled: true, alerts: { managedSecretStale: stale } } } },
          args: ['--api-versions', 'monitoring.coreos.com/v1'],
        });
        const rule = findObject(objs, 'PrometheusRule') as KubeManifest & {
          spec: { groups: { rules: { alert: string; expr: string; for: string }[] }[] };
        };
        return rule.spec.groups.flatMap((g) => g.rules);
      };
      const custom = (await rulesOf({ thresholdSeconds: 86400, for: '30m' })).find(
        (r) => r.alert === 'SecretsyncManagedSecretStale',
      );
      expect(custom?.expr).to.match(/\) > 86400$/);
      expect(custom?.for).to.equal('30m');
      expect((await rulesOf({ enabled: false })).map((r) => r.alert)).to.not.include('SecretsyncManagedSecretStale');
    });

    it('passes the cluster name, and creates the replication receiver with exactly the documented rules', () => {
      expect(containerOf(objects).args).to.include.members(['--replication=true', '--cluster-name=eu-central-1']);
      const perms = permissions(objects, 'secretsync-system', 'secretsync-replication-receiver');
      const expected = [...RECEIVER_RULES, ...RECEIVER_CREDENTIAL_RULES].flatMap((r) =>
        r.apiGroups.flatMap((g) => expand('*', g, r.resources, r.verbs)),
      );
      expect(perms).to.deep.equal(expected.sort());
    });

    it('opens only the metrics port when the NetworkPolicy is on', () => {
      const np = findObject(objects, 'NetworkPolicy') as KubeManifest & {
        spec: { policyTypes: string[]; ingress: { ports: object[]; from: object[] }[]; egress: object[] };
      };
      expect(np.spec.policyTypes).to.deep.equal(['Ingress', 'Egress']);
      expect(np.spec.ingress).to.deep.equal([
        { ports: [{ port: 'metrics', protocol: 'TCP' }], from: everything.networkPolicy.metricsFrom },
      ]);
      expect(np.spec.egress).to.deep.equal(everything.networkPolicy.egress);
    });
  });

  describe('against a real kube-apiserver', () => {
    let cluster: TestCluster;
    let kubeconfig: string;
    const dir = tempDir('dry-run');

    /** Minimal stand-ins for the Prometheus Operator CRDs, so its objects can be dry-run too. */
    const monitoringCrd = (kind: string, plural: string) => ({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.monitoring.coreos.com` },
      spec: {
        group: 'monitoring.coreos.com',
        names: { kind, plural, listKind: `${kind}List`, singular: kind.toLowerCase() },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    });

    before(async function () {
      this.timeout(300_000);
      cluster = await TestCluster.start({ name: 'e2e-chart' });
      kubeconfig = cluster.kubeconfigPath;
      // No secretsync CRDs beforehand: every rendering below carries them (crds.install), dry-run created.
      const stubs = join(dir, 'monitoring-crds.yaml');
      writeFileSync(
        stubs,
        [monitoringCrd('ServiceMonitor', 'servicemonitors'), monitoringCrd('PrometheusRule', 'prometheusrules')]
          .map((o) => stringify(o))
          .join('---\n'),
      );
      await mustKubectl(kubeconfig, ['apply', '--server-side', '-f', stubs]);
      await mustKubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
      for (const ns of ['secretsync-system', 'team-a', 'team-b'])
        await mustKubectl(kubeconfig, ['create', 'namespace', ns]);
    });

    after(async () => {
      await cluster?.stop();
    });

    const dryRun = async (name: string, values?: object) => {
      const rendered = await helmTemplate(values ? { values } : {});
      expect(rendered.code, rendered.stderr).to.equal(0);
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, rendered.stdout);
      const result = await mustKubectl(kubeconfig, ['apply', '--dry-run=server', '--validate=strict', '-f', file]);
      const lines = result.stdout.trim().split('\n');
      expect(lines.length).to.equal(parseManifests(rendered.stdout).length);
      for (const line of lines) expect(line).to.match(/ \(server dry run\)$/);
      expect(result.stderr).to.not.match(/warning/i);
    };

    it('accepts the default rendering (kubectl apply --dry-run=server)', async () => {
      await dryRun('default');
    });

    it('accepts the namespaced-scope rendering', async () => {
      await dryRun('namespaced', { watchNamespaces: ['team-a', 'team-b'] });
    });

    it('accepts the rendering with every option on', async () => {
      await dryRun('everything', everything);
    });

    it("admits the operator's Pod under the restricted Pod Security Standard", async () => {
      const ns = 'pss-restricted';
      await mustKubectl(kubeconfig, ['create', 'namespace', ns]);
      await mustKubectl(kubeconfig, [
        'label',
        'namespace',
        ns,
        'pod-security.kubernetes.io/enforce=restricted',
        'pod-security.kubernetes.io/warn=restricted',
      ]);
      const objects = await renderChart({ namespace: ns, values: everything });
      // The ServiceAccount for real (admission looks it up), the Deployment and a Pod from its template as dry runs.
      const sa = join(dir, 'pss-sa.yaml');
      writeFileSync(sa, stringify(findObject(objects, 'ServiceAccount', 'secretsync')));
      await mustKubectl(kubeconfig, ['apply', '-f', sa]);
      const deployment = deploymentOf(objects);
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'secretsync-pss-check', namespace: ns },
        spec: deployment.spec.template.spec,
      };
      const files = { deployment: join(dir, 'pss-deployment.yaml'), pod: join(dir, 'pss-pod.yaml') };
      writeFileSync(files.deployment, stringify(deployment));
      writeFileSync(files.pod, stringify(pod));
      const d = await mustKubectl(kubeconfig, ['apply', '--dry-run=server', '-f', files.deployment]);
      expect(d.stderr, 'PodSecurity warnings for the Deployment').to.not.match(/violate PodSecurity/);
      const p = await mustKubectl(kubeconfig, ['apply', '--dry-run=server', '-f', files.pod]);
      expect(p.stdout).to.contain('pod/secretsync-pss-check created (server dry run)');

      // And the check bites: the same Pod running as root is refused.
      const rootPod = structuredClone(pod);
      (rootPod.spec.containers[0] as Container).securityContext = { runAsUser: 0 };
      writeFileSync(files.pod, stringify(rootPod));
      const refused = await kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', files.pod]);
      expect(refused.code).to.not.equal(0);
      expect(refused.stderr).to.match(/violates PodSecurity "restricted/);
    });

    it('admits the Pod without fixed IDs (fixedUid=false, for OpenShift) under the restricted standard too', async () => {
      // Runs after the test above, which created the namespace and the ServiceAccount.
      const ns = 'pss-restricted';
      await dryRun('openshift', { ...everything, fixedUid: false });
      const objects = await renderChart({ namespace: ns, values: { ...everything, fixedUid: false } });
      const spec = deploymentOf(objects).spec.template.spec;
      expect(spec.securityContext).to.not.have.any.keys('runAsUser', 'runAsGroup', 'fsGroup');
      const file = join(dir, 'pss-pod-openshift.yaml');
      writeFileSync(
        file,
        stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'secretsync-pss-openshift', namespace: ns },
          spec,
        }),
      );
      const p = await mustKubectl(kubeconfig, ['apply', '--dry-run=server', '-f', file]);
      expect(p.stdout).to.contain('pod/secretsync-pss-openshift created (server dry run)');
      expect(p.stderr).to.not.match(/violate PodSecurity/);
    });
  });
});
