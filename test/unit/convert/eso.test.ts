// `secretsync convert`: ESO manifests (v1 and v1beta1) become secretsync
// resources that the CRD schemas accept, and every field that is not carried
// over is a report line naming the object, the field and why.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { clusterSecretStoreSchema, managedSecretSchema, secretStoreSchema } from '../../../src/api/schemas.js';
import type { ManagedSecret } from '../../../src/api/types.js';
import { parseManifests } from '../../../src/cli/commands/convert.js';
import { main } from '../../../src/cli/main.js';
import {
  convertEso,
  formatNote,
  selectorText,
  type ConversionResult,
  type ConvertedObject,
} from '../../../src/convert/eso.js';
import { goTemplateToMustache } from '../../../src/convert/go-template.js';
import { validate } from '../api/schema-check.js';
import { captureIo } from '../helpers/index.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/eso-v1.yaml', import.meta.url));
const fixtureDocs = () => parseManifests(readFileSync(FIXTURE, 'utf8'), 'fixture');

const SCHEMAS = {
  SecretStore: secretStoreSchema,
  ClusterSecretStore: clusterSecretStoreSchema,
  ManagedSecret: managedSecretSchema,
};

function expectValid(objects: ConvertedObject[]): void {
  for (const o of objects) expect(validate(SCHEMAS[o.kind], o), `${o.kind} ${o.metadata.name}`).to.deep.equal([]);
}

const lines = (r: ConversionResult) => r.notes.map(formatNote);
const find = (r: ConversionResult, kind: string, name: string, namespace?: string) =>
  r.objects.find(
    (o) =>
      o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );

/** An ExternalSecret document of `apiVersion` with `spec`. */
function es(spec: Record<string, unknown>, apiVersion = 'external-secrets.io/v1', name = 'db') {
  return { apiVersion, kind: 'ExternalSecret', metadata: { name, namespace: 'team-a' }, spec };
}
const STORE_REF = { secretStoreRef: { name: 'aws-sm' } };
const ONE_KEY = { data: [{ secretKey: 'k', remoteRef: { key: 'prod/k' } }] };

function awsStore(aws: Record<string, unknown>, kind = 'SecretStore', extraSpec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'external-secrets.io/v1',
    kind,
    metadata: { name: 'aws-sm', ...(kind === 'SecretStore' ? { namespace: 'team-a' } : {}) },
    spec: { provider: { aws: { service: 'SecretsManager', region: 'eu-west-1', ...aws } }, ...extraSpec },
  };
}

describe('convert: External Secrets Operator manifests', () => {
  describe('the fixture (every kind, both versions)', () => {
    const result = convertEso(fixtureDocs());

    it('writes resources the CRD schemas accept', () => {
      expect(result.objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`)).to.deep.equal([
        'SecretStore team-a/aws-sm',
        'ClusterSecretStore /aws-ps',
        'ManagedSecret team-a/db',
        'ManagedSecret team-a/shared-config',
        'ManagedSecret team-b/shared-config',
      ]);
      expectValid(result.objects);
    });

    it('carries stores over: provider, region, static credentials, IRSA role, conditions', () => {
      expect(find(result, 'SecretStore', 'aws-sm')?.spec).to.deep.equal({
        provider: {
          awsSecretsManager: {
            region: 'eu-west-1',
            auth: {
              secretRef: {
                accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id' },
                secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
              },
            },
          },
        },
      });
      expect(find(result, 'ClusterSecretStore', 'aws-ps')?.spec).to.deep.equal({
        provider: {
          awsParameterStore: {
            region: 'us-east-1',
            auth: { serviceAccountRef: { name: 'eso-reader', namespace: 'secretsync-system' } },
            roleArn: 'arn:aws:iam::123456789012:role/eso-reader',
          },
        },
        conditions: [{ namespaces: ['team-a', 'team-b'] }],
      });
    });

    it('carries an ExternalSecret over: data, dataFrom, target, template, refresh', () => {
      const ms = find(result, 'ManagedSecret', 'db') as ManagedSecret;
      expect(ms.metadata.annotations).to.deep.equal({
        team: 'payments',
        'secretsync.io/converted-from': 'external-secrets.io/v1 ExternalSecret team-a/db',
      });
      expect(ms.spec).to.deep.equal({
        storeRef: { name: 'aws-sm' },
        data: [
          { secretKey: 'username', remoteRef: { key: 'prod/db', property: 'username', version: '0f6b' } },
          { secretKey: 'password', remoteRef: { key: 'prod/db', property: 'password' } },
        ],
        dataFrom: [{ extract: { key: 'prod/shared' } }, { find: { nameRegexp: '^prod/app-', tags: { team: 'a' } } }],
        target: {
          name: 'db-credentials',
          deletionPolicy: 'Delete',
          type: 'kubernetes.io/basic-auth',
          labels: { app: 'web' },
          annotations: { 'reloader.stakater.com/match': 'true' },
          template: { data: { username: '{{username}}', password: '{{password}}' } },
        },
        refreshInterval: '15m',
      });
    });

    it('reports every field it could not carry over, and why', () => {
      const report = lines(result);
      for (const expected of [
        'dropped: ExternalSecret team-a/db: spec.data[2]: decodingStrategy Base64',
        'dropped: ExternalSecret team-a/db: spec.dataFrom[2]: rewrite renames the keys',
        'dropped: ExternalSecret team-a/db: spec.target.template.data.url: uses {{ .password | urlquery }}',
        'changed: ExternalSecret team-a/db: spec.target.deletionPolicy: Merge',
        'dropped: ClusterSecretStore aws-ps: spec.provider.aws.sessionTags',
        'dropped: ClusterSecretStore aws-ps: spec.conditions[0].namespaceRegexes: "team-.*" is not one namespace',
        'changed: ClusterSecretStore aws-ps: spec.provider.aws.auth.jwt.serviceAccountRef',
        'skipped: SecretStore team-c/vault: spec.provider: provider vault has no secretsync equivalent',
        'skipped: ExternalSecret team-c/from-vault: spec.secretStoreRef: SecretStore vault was not converted',
        'skipped: ClusterExternalSecret shared-config: spec.namespaceSelector: namespaces selected by labels "shared=true" only a cluster can list: run kubectl get namespaces -l \'shared=true\'',
        'changed: ClusterExternalSecret shared-config: spec.refreshPolicy: CreatedOnce',
        'skipped: ConfigMap unrelated: v1: not an External Secrets Operator object',
      ])
        expect(
          report.some((l) => l.startsWith(expected)),
          expected,
        ).to.equal(true);
      // Findings of a ClusterExternalSecret's spec are reported once, not once per namespace.
      expect(report.filter((l) => l.includes('spec.refreshPolicy'))).to.have.length(1);
    });

    it('gives the same result for v1beta1 manifests', () => {
      const beta = fixtureDocs().map((d) => {
        const doc = d as { apiVersion?: string };
        return doc.apiVersion === 'external-secrets.io/v1'
          ? { ...doc, apiVersion: 'external-secrets.io/v1beta1' }
          : doc;
      });
      const converted = convertEso(beta);
      const strip = (objs: ConvertedObject[]) =>
        objs.map((o) => ({ ...o, metadata: { ...o.metadata, annotations: undefined } }));
      expect(strip(converted.objects)).to.deep.equal(strip(result.objects));
      expect(converted.notes.map((n) => n.message)).to.deep.equal(result.notes.map((n) => n.message));
    });
  });

  describe('stores', () => {
    it('needs the role for IRSA (ESO reads it from the ServiceAccount), and skips the store and its users without it', () => {
      const r = convertEso([
        awsStore({ auth: { jwt: { serviceAccountRef: { name: 'sa' } } } }),
        es({ ...STORE_REF, ...ONE_KEY }),
      ]);
      expect(r.objects).to.deep.equal([]);
      expect(lines(r)[0]).to.include(
        'skipped: SecretStore team-a/aws-sm: spec.provider.aws.auth.jwt.serviceAccountRef',
      );
      expect(lines(r)[0]).to.include('eks.amazonaws.com/role-arn');
      expect(lines(r)[1]).to.include('skipped: ExternalSecret team-a/db');
    });

    it('never opens a ClusterSecretStore to every namespace: one whose conditions cannot be carried over is skipped', () => {
      const r = convertEso([awsStore({}, 'ClusterSecretStore', { conditions: [{ namespaceRegexes: ['^team-.*$'] }] })]);
      expect(r.objects).to.deep.equal([]);
      expect(lines(r).join('\n')).to.include('skipped: ClusterSecretStore aws-sm: spec.conditions');
      const literal = convertEso([
        awsStore({}, 'ClusterSecretStore', { conditions: [{ namespaceRegexes: ['^team-a$'] }] }),
      ]);
      expect((literal.objects[0] as { spec: unknown }).spec).to.have.deep.property('conditions', [
        { namespaces: ['team-a'] },
      ]);
    });

    it('drops a namespace on a SecretStore credential ref, keeps it on a ClusterSecretStore', () => {
      const auth = {
        secretRef: {
          accessKeyIDSecretRef: { name: 'c', key: 'id', namespace: 'ops' },
          secretAccessKeySecretRef: { name: 'c', key: 'secret', namespace: 'ops' },
        },
      };
      const namespaced = convertEso([awsStore({ auth })]);
      expectValid(namespaced.objects);
      expect(JSON.stringify(namespaced.objects[0])).not.to.include('"ops"');
      expect(lines(namespaced)[0]).to.include('accessKeyIDSecretRef.namespace');
      const cluster = convertEso([awsStore({ auth }, 'ClusterSecretStore')]);
      expect(JSON.stringify(cluster.objects[0])).to.include('"namespace":"ops"');
    });

    it("prepends the store's prefix to the keys its ExternalSecrets read", () => {
      const r = convertEso([
        es({ ...STORE_REF, ...ONE_KEY, dataFrom: [{ extract: { key: 'shared' } }, { find: { path: 'feature/' } }] }),
        awsStore({ prefix: 'prod/' }),
      ]);
      const ms = find(r, 'ManagedSecret', 'db') as ManagedSecret;
      expect(ms.spec.data?.[0]?.remoteRef?.key).to.equal('prod/prod/k');
      expect(ms.spec.dataFrom).to.deep.equal([
        { extract: { key: 'prod/shared' } },
        { find: { prefix: 'prod/feature/' } },
      ]);
      expect(lines(r).join('\n')).to.include('spec.provider.aws.prefix').and.include('spec.dataFrom[1].find');
    });

    it('skips services and providers secretsync does not have', () => {
      const r = convertEso([awsStore({ service: 'CertificateManager' })]);
      expect(r.objects).to.deep.equal([]);
      expect(lines(r)[0]).to.include('CertificateManager has no secretsync equivalent');
    });
  });

  describe('ExternalSecrets', () => {
    it('maps creation and deletion policies, saying what differs', () => {
      const policies = (creationPolicy: string) =>
        convertEso([es({ ...STORE_REF, ...ONE_KEY, target: { creationPolicy } })]);
      expect(policies('Orphan').objects[0]?.spec).to.have.deep.property('target', { creationPolicy: 'Orphan' });
      expect(policies('None').objects[0]?.spec).to.have.deep.property('target', { creationPolicy: 'None' });
      const merge = policies('Merge');
      expect(merge.objects[0]?.spec).to.have.deep.property('target', { creationPolicy: 'Merge' });
      expect(lines(merge)[0]).to.include('secretsync.io/merge-from=db');
      expect(policies('CreateOrMerge').objects[0]?.spec).to.have.deep.property('target', { creationPolicy: 'Orphan' });
      expect(policies('Owner').objects[0]?.spec).not.to.have.property('target');
    });

    it('leaves out items whose values ESO transforms, and keeps the rest', () => {
      const r = convertEso([
        es({
          ...STORE_REF,
          data: [
            { secretKey: 'a', remoteRef: { key: 'x', decodingStrategy: 'Auto' } },
            { secretKey: 'b', remoteRef: { key: 'x', metadataPolicy: 'Fetch' } },
            { secretKey: 'c', remoteRef: { key: 'x', conversionStrategy: 'Unicode' } },
            { secretKey: 'd', remoteRef: { key: 'x', decodingStrategy: 'None', conversionStrategy: 'Default' } },
            { secretKey: 'e', remoteRef: { key: 'x' }, sourceRef: { generatorRef: { kind: 'Password', name: 'p' } } },
            { secretKey: 'f', remoteRef: { key: 'x' }, sourceRef: { storeRef: { name: 'other' } } },
          ],
          dataFrom: [{ extract: { key: 'x', property: 'nested' } }, { find: { path: 'a/', name: { regexp: 'b' } } }],
        }),
      ]);
      expect((r.objects[0] as ManagedSecret).spec.data).to.deep.equal([{ secretKey: 'd', remoteRef: { key: 'x' } }]);
      expect((r.objects[0] as ManagedSecret).spec).not.to.have.property('dataFrom');
      expect(r.notes.map((n) => n.field)).to.deep.equal([
        'spec.data[0]',
        'spec.data[1]',
        'spec.data[2]',
        'spec.data[4]',
        'spec.data[5]',
        'spec.dataFrom[0]',
        'spec.dataFrom[1]',
      ]);
    });

    it('skips an ExternalSecret with nothing left to read, or that writes something other than a Secret', () => {
      const empty = convertEso([
        es({ ...STORE_REF, data: [{ secretKey: 'a', remoteRef: { key: 'x', decodingStrategy: 'Base64' } }] }),
      ]);
      expect(empty.objects).to.deep.equal([]);
      expect(lines(empty).at(-1)).to.include('skipped: ExternalSecret team-a/db: nothing left to read');
      const manifest = convertEso([
        es({ ...STORE_REF, ...ONE_KEY, target: { manifest: { apiVersion: 'v1', kind: 'ConfigMap' } } }),
      ]);
      expect(manifest.objects).to.deep.equal([]);
      expect(lines(manifest)[0]).to.include('spec.target.manifest');
    });

    it("copies the ExternalSecret's labels and annotations, without kubectl's, Argo CD's and ESO's bookkeeping", () => {
      const doc = es({ ...STORE_REF, ...ONE_KEY });
      const r = convertEso([
        {
          ...doc,
          metadata: {
            ...doc.metadata,
            labels: { team: 'a', 'app.kubernetes.io/instance': 'eso-app' },
            annotations: {
              note: 'x',
              'argocd.argoproj.io/tracking-id': 'eso-app:external-secrets.io/ExternalSecret:team-a/db',
              'external-secrets.io/force-sync': '1',
              'kubectl.kubernetes.io/last-applied-configuration': '{}',
            },
          },
        },
      ]);
      expect(r.objects[0]?.metadata).to.deep.equal({
        name: 'db',
        namespace: 'team-a',
        labels: { team: 'a' },
        annotations: { note: 'x', 'secretsync.io/converted-from': 'external-secrets.io/v1 ExternalSecret team-a/db' },
      });
    });

    it('takes the store from the items when every item names the same one', () => {
      const r = convertEso([
        es({
          data: [
            {
              secretKey: 'a',
              remoteRef: { key: 'x' },
              sourceRef: { storeRef: { name: 's', kind: 'ClusterSecretStore' } },
            },
          ],
        }),
      ]);
      expect((r.objects[0] as ManagedSecret).spec.storeRef).to.deep.equal({ kind: 'ClusterSecretStore', name: 's' });
    });

    it('refreshes: intervals as they are, CreatedOnce and OnChange once, sync windows reported', () => {
      const refresh = (spec: Record<string, unknown>) => convertEso([es({ ...STORE_REF, ...ONE_KEY, ...spec })]);
      expect(refresh({ refreshInterval: '1h0m0s' }).objects[0]?.spec).to.have.property('refreshInterval', '1h0m0s');
      expect(refresh({ refreshInterval: '0' }).objects[0]?.spec).to.have.property('refreshInterval', '0');
      expect(refresh({ refreshPolicy: 'OnChange' }).objects[0]?.spec).to.have.property('refreshInterval', '0');
      expect(lines(refresh({ syncWindows: { kind: 'deny', windows: [] } }))[0]).to.include('spec.syncWindows');
    });

    it('drops template metadata the cluster acts on or that is templated, and templateFrom', () => {
      const r = convertEso([
        es({
          ...STORE_REF,
          ...ONE_KEY,
          target: {
            template: {
              type: 'kubernetes.io/service-account-token',
              metadata: { labels: { 'kubernetes.io/x': 'y', team: '{{ .k }}', ok: 'yes' } },
              templateFrom: [{ configMap: { name: 'tpl', items: [{ key: 'a' }] } }],
              mergePolicy: 'Merge',
              data: { copy: '{{ .k }}' },
            },
          },
        }),
      ]);
      expectValid(r.objects);
      expect((r.objects[0] as ManagedSecret).spec.target).to.deep.equal({
        labels: { ok: 'yes' },
        template: { data: { copy: '{{k}}' }, mergePolicy: 'Merge' },
      });
      expect(r.notes.map((n) => n.field)).to.deep.equal([
        'spec.target.template.type',
        'spec.target.template.metadata.labels.kubernetes.io/x',
        'spec.target.template.metadata.labels.team',
        'spec.target.template.templateFrom[0]',
      ]);
    });
  });

  describe('ClusterExternalSecrets', () => {
    const ces = (spec: Record<string, unknown>, status?: Record<string, unknown>) => ({
      apiVersion: 'external-secrets.io/v1',
      kind: 'ClusterExternalSecret',
      metadata: { name: 'shared' },
      spec: {
        externalSecretSpec: { secretStoreRef: { name: 'css', kind: 'ClusterSecretStore' }, ...ONE_KEY },
        ...spec,
      },
      ...(status ? { status } : {}),
    });
    const selector = { namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] } };

    it('becomes one ManagedSecret per namespace given with --namespaces for label selectors', () => {
      const r = convertEso([ces(selector)], { selectedNamespaces: { shared: ['x', 'y'] } });
      expect(r.objects.map((o) => o.metadata.namespace)).to.deep.equal(['x', 'y']);
      expectValid(r.objects);
      expect(r.notes).to.deep.equal([]);
    });

    it('uses status.provisionedNamespaces of an export, saying that later namespaces are not covered', () => {
      const r = convertEso([ces(selector, { provisionedNamespaces: ['p'] })]);
      expect(r.objects.map((o) => o.metadata.namespace)).to.deep.equal(['p']);
      expect(lines(r)[0]).to.include('status.provisionedNamespaces').and.include('labelled later');
    });

    it('names the selector as kubectl takes it when only a cluster can resolve it', () => {
      const r = convertEso([ces(selector)]);
      expect(r.objects).to.deep.equal([]);
      expect(lines(r)[0]).to.include("kubectl get namespaces -l 'tier in (a,b)'").and.include('--namespaces shared=');
      expect(
        selectorText({
          matchLabels: { a: '1' },
          matchExpressions: [
            { key: 'b', operator: 'NotIn', values: ['2'] },
            { key: 'c', operator: 'Exists' },
            { key: 'd', operator: 'DoesNotExist' },
          ],
        }),
      ).to.equal('a=1,b notin (2),c,!d');
    });
  });

  describe('input', () => {
    it('unwraps kubectl lists and skips what is not ESO, never copying data', () => {
      const r = convertEso([
        {
          apiVersion: 'v1',
          kind: 'List',
          items: [
            { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { password: 'aHVudGVyMg==' } },
            { ...awsStore({}) },
            { apiVersion: 'external-secrets.io/v1alpha1', kind: 'ExternalSecret', metadata: { name: 'old' } },
            { apiVersion: 'external-secrets.io/v1alpha1', kind: 'PushSecret', metadata: { name: 'p' } },
            { apiVersion: 'external-secrets.io/v1', kind: 'PushSecret', metadata: { name: 'p' } },
          ],
        },
      ]);
      expect(r.objects.map((o) => o.kind)).to.deep.equal(['SecretStore']);
      expect(r.notes.map((n) => `${n.severity} ${n.source}`)).to.deep.equal([
        'skipped Secret s',
        'skipped ExternalSecret old',
        'skipped PushSecret p',
        'skipped PushSecret p',
        // The store without auth now uses the operator's identity.
        'changed SecretStore team-a/aws-sm',
      ]);
      expect(JSON.stringify(r)).not.to.include('aHVudGVyMg');
    });
  });
});

describe('goTemplateToMustache', () => {
  it('carries over templates that only place values, literal text byte for byte', () => {
    expect(
      goTemplateToMustache('postgres://{{ .user }}:{{.password|toString}}@db:5432/{{ index . "db.name" }}'),
    ).to.deep.equal({
      ok: true,
      mustache: 'postgres://{{user}}:{{password}}@db:5432/{{db.name}}',
    });
    expect(goTemplateToMustache('no actions } here')).to.deep.equal({ ok: true, mustache: 'no actions } here' });
    expect(goTemplateToMustache('{{ index . `tls.crt` }}')).to.deep.equal({ ok: true, mustache: '{{tls.crt}}' });
  });

  it('refuses everything else, naming the action', () => {
    const cases: [string, string][] = [
      ['{{ .a | b64dec }}', '{{ .a | b64dec }}'],
      ['{{- .a }}', '{{- .a }}'],
      ['{{ if .a }}x{{ end }}', '{{ if .a }}'],
      ['{{ range $k, $v := . }}{{ end }}', '{{ range $k, $v := . }}'],
      ['{{ .a.b }}', '{{ .a.b }}'],
      ['{{ index . "a/b" }}', '{{ index . "a/b" }}'],
      ['{{ .a', 'an unclosed {{'],
    ];
    for (const [template, action] of cases)
      expect(goTemplateToMustache(template)).to.deep.equal({
        ok: false,
        unsupported: action.startsWith('{{-') ? `${action} (whitespace trimming)` : action,
      });
  });
});

describe('secretsync convert (command)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-convert-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function run(args: string[], stdin = '') {
    const io = captureIo(stdin);
    const code = await main(['node', 'secretsync', 'convert', ...args], io);
    return { code, out: io.outLines.join('\n'), err: io.errLines };
  }

  it('reads stdin, writes a YAML stream to stdout and the report to stderr', async () => {
    const r = await run([], readFileSync(FIXTURE, 'utf8'));
    expect(r.code).to.equal(0);
    const docs = parseAllDocuments(r.out).map((d) => d.toJS() as ConvertedObject);
    expect(docs.map((d) => d.kind)).to.deep.equal([
      'SecretStore',
      'ClusterSecretStore',
      'ManagedSecret',
      'ManagedSecret',
      'ManagedSecret',
    ]);
    expect(r.err.at(-1)).to.equal('converted 5 objects; 4 skipped, 6 fields dropped, 3 changes to check');
  });

  it('reads directories recursively, writes to files, and --strict fails when anything was left out', async () => {
    await mkdir(join(dir, 'in', 'nested'), { recursive: true });
    await writeFile(join(dir, 'in', 'nested', 'a.yaml'), readFileSync(FIXTURE, 'utf8'));
    await writeFile(join(dir, 'in', 'README.md'), 'not a manifest: {');
    const out = join(dir, 'out.yaml');
    const report = join(dir, 'report.txt');
    const r = await run([join(dir, 'in'), '-o', out, '--report', report, '--namespaces', 'shared-config=team-c']);
    expect(r).to.deep.include({ code: 0, out: '' });
    expect(r.err).to.deep.equal([]);
    const written = parseAllDocuments(await readFile(out, 'utf8')).map((d) => d.toJS() as ConvertedObject);
    expect(written.filter((o) => o.metadata.name === 'shared-config').map((o) => o.metadata.namespace)).to.deep.equal([
      'team-a',
      'team-b',
      'team-c',
    ]);
    expect(await readFile(report, 'utf8')).to.include('dropped: ExternalSecret team-a/db: spec.data[2]');
    const strict = await run([join(dir, 'in'), '-o', out, '--report', report, '--strict']);
    expect(strict.code).to.equal(1);
    expect(strict.err.join('\n')).to.include('--strict');
  });

  it('names the input and line of invalid YAML, and refuses a malformed --namespaces', async () => {
    const bad = await run([], 'kind: ExternalSecret\n  bad: [');
    expect(bad.code).to.equal(1);
    expect(bad.err.join('\n')).to.match(/stdin line \d+: not valid YAML/);
    const ns = await run(['--namespaces', 'x=Bad_NS'], '');
    expect(ns.code).to.equal(1);
    expect(ns.err.join('\n')).to.include('--namespaces takes');
  });
});
