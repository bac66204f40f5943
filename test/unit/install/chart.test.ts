// The Helm chart's static contract: versions follow package.json, its CRDs
// (files/crds/, rendered by templates/crds.yaml) are the generated ones, every
// value is documented, and the values schema rejects unknown keys. (Rendering
// and installing it: test/e2e/.)
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parse, parseDocument, type Node } from 'yaml';
import { buildCrds, crdFileName, renderCrdYaml } from '../../../src/api/crds.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const chartDir = join(root, 'charts', 'secretsync');
const read = (...parts: string[]) => readFileSync(join(root, ...parts), 'utf8');

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  description?: string;
}

describe('the Helm chart (charts/secretsync)', () => {
  it('has appVersion and version equal to package.json version', () => {
    const pkg = JSON.parse(read('package.json')) as { version: string };
    const chart = parse(read('charts', 'secretsync', 'Chart.yaml')) as { appVersion: unknown; version: unknown };
    expect(chart.appVersion, 'Chart.yaml appVersion').to.equal(pkg.version);
    expect(chart.version, 'Chart.yaml version').to.equal(pkg.version);
  });

  it('carries the generated CRDs in files/crds/, byte for byte the same as the top-level crds/ (npm run generate:crds)', () => {
    const expected = new Map(buildCrds().map((crd) => [crdFileName(crd), renderCrdYaml(crd)]));
    const chartFiles = readdirSync(join(chartDir, 'files', 'crds')).sort();
    expect(chartFiles, 'files in charts/secretsync/files/crds').to.deep.equal([...expected.keys()].sort());
    for (const [file, content] of expected) {
      const where = `charts/secretsync/files/crds/${file} is stale: run npm run generate:crds`;
      expect(readFileSync(join(chartDir, 'files', 'crds', file), 'utf8'), where).to.equal(content);
      expect(readFileSync(join(chartDir, 'files', 'crds', file), 'utf8')).to.equal(read('crds', file));
    }
  });

  it('has no crds/ folder: Helm would install it once, never upgrade it, and collide with the templated CRDs', () => {
    expect(existsSync(join(chartDir, 'crds')), 'charts/secretsync/crds must not exist').to.equal(false);
    const template = read('charts', 'secretsync', 'templates', 'crds.yaml');
    expect(template).to.contain('.Files.Glob "files/crds/*.yaml"');
    expect(template).to.contain('.Values.crds.install');
  });

  it('documents every key of values.yaml with a "-- " comment above it', () => {
    const doc = parseDocument(read('charts', 'secretsync', 'values.yaml'));
    const undocumented: string[] = [];
    const keys: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!isMap(node)) return;
      node.items.forEach((pair, index) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        keys.push(path + key);
        // The comment above a nested map's first key belongs to the map node.
        const comment = (pair.key as Node).commentBefore ?? (index === 0 ? node.commentBefore : undefined) ?? '';
        if (!comment.split('\n').some((line) => line.trimStart().startsWith('-- '))) undocumented.push(path + key);
        walk(pair.value, `${path}${key}.`);
      });
    };
    walk(doc.contents, '');
    expect(keys.length).to.be.greaterThan(50);
    expect(undocumented, 'keys without a "# -- what it does" comment').to.deep.equal([]);
  });

  it('has a schema for every key of values.yaml that rejects unknown keys, so a typo fails helm install', () => {
    const schema = JSON.parse(read('charts', 'secretsync', 'values.schema.json')) as SchemaNode;
    const values = parse(read('charts', 'secretsync', 'values.yaml')) as Record<string, unknown>;
    const problems: string[] = [];
    const check = (value: unknown, node: SchemaNode | undefined, path: string) => {
      if (!node) {
        problems.push(`${path}: not in values.schema.json`);
        return;
      }
      if (!node.description) problems.push(`${path}: no description in the schema`);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
      // Maps the user fills freely (labels, annotations, Kubernetes objects) have no properties list.
      if (!node.properties) return;
      if (node.additionalProperties !== false) problems.push(`${path}: additionalProperties is not false`);
      for (const [key, child] of Object.entries(value))
        check(child, node.properties[key], path ? `${path}.${key}` : key);
    };
    check(values, schema, '');
    expect(problems).to.deep.equal([]);
  });
});
