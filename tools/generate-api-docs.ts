// docs/api.md from the schemas in src/api/schemas.ts and the files in examples/.
// Run by `npm run generate:crds`, or alone: tsx tools/generate-api-docs.ts.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as prettier from 'prettier';
import { parseAllDocuments } from 'yaml';
import { CATEGORY } from '../src/api/crds.js';
import { KINDS, type JSONSchemaProps, type KindDefinition } from '../src/api/schemas.js';
import { API_VERSION } from '../src/api/types.js';

const root = fileURLToPath(new URL('..', import.meta.url));
export const API_DOCS_PATH = join(root, 'docs', 'api.md');
const EXAMPLES_DIR = join(root, 'examples');

const cell = (s: string) => s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
const code = (s: string) => `\`${s}\``;

function typeOf(s: JSONSchemaProps): string {
  if (s.type === 'array') return `[]${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && s.additionalProperties && !s.properties)
    return `map[string]${typeOf(s.additionalProperties)}`;
  if (s.format) return `${s.type ?? 'any'} (${s.format})`;
  return s.type ?? 'any';
}

function constraints(s: JSONSchemaProps): string[] {
  const out: string[] = [];
  if (s.enum) out.push(`One of ${s.enum.map(code).join(', ')}.`);
  if (s.pattern) out.push(`Pattern ${code(s.pattern)}.`);
  if (s.minLength !== undefined && s.maxLength !== undefined) out.push(`Length ${s.minLength}–${s.maxLength}.`);
  else if (s.maxLength !== undefined) out.push(`At most ${s.maxLength} characters.`);
  if (s.maxItems !== undefined) out.push(`At most ${s.maxItems} items.`);
  if (s.maxProperties !== undefined) out.push(`At most ${s.maxProperties} entries.`);
  if (s.additionalProperties?.maxLength !== undefined)
    out.push(`Values at most ${s.additionalProperties.maxLength} characters.`);
  if (s['x-kubernetes-list-type'] === 'map') {
    out.push(`One item per ${(s['x-kubernetes-list-map-keys'] ?? []).map(code).join(', ')}.`);
  }
  return out;
}

interface Row {
  path: string;
  schema: JSONSchemaProps;
  required: boolean;
}

function walk(path: string, schema: JSONSchemaProps, required: boolean, rows: Row[]): void {
  rows.push({ path, schema, required });
  const props = schema.properties ?? (schema.type === 'array' ? schema.items?.properties : undefined);
  const req = (schema.type === 'array' ? schema.items?.required : schema.required) ?? [];
  const prefix = schema.type === 'array' ? `${path}[]` : path;
  for (const [name, child] of Object.entries(props ?? {})) walk(`${prefix}.${name}`, child, req.includes(name), rows);
}

interface RuleRow {
  path: string;
  rule: string;
  message: string;
}

function rulesOf(path: string, schema: JSONSchemaProps, out: RuleRow[]): void {
  for (const r of schema['x-kubernetes-validations'] ?? []) out.push({ path, rule: r.rule, message: r.message });
  if (schema.items) rulesOf(`${path}[]`, schema.items, out);
  for (const [name, child] of Object.entries(schema.properties ?? {})) rulesOf(`${path}.${name}`, child, out);
}

function examplesOf(kind: string): { file: string; text: string }[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ file: f, text: readFileSync(join(EXAMPLES_DIR, f), 'utf8') }))
    .filter(({ text }) => parseAllDocuments(text).some((d) => (d.toJS() as { kind?: unknown } | null)?.kind === kind));
}

function kindSection(def: KindDefinition): string {
  const lines: string[] = [];
  const top = def.schema.properties ?? {};
  lines.push(`## ${def.kind}`, '', def.schema.description ?? '', '');
  lines.push(
    `${def.scope === 'Namespaced' ? 'Namespaced' : 'Cluster-scoped'}; short name ${def.shortNames.map(code).join(', ')}; ` +
      `\`kubectl get ${def.plural}\` shows ${def.printerColumns.map((c) => c.name).join(', ')}.`,
    '',
  );
  lines.push('| Field | Type | Required | Default | Description |', '| --- | --- | --- | --- | --- |');
  const rows: Row[] = [];
  for (const name of ['spec', 'status']) {
    const s = top[name];
    if (s) walk(name, s, (def.schema.required ?? []).includes(name), rows);
  }
  for (const { path, schema, required } of rows) {
    const description = [schema.description ?? '', ...constraints(schema)].filter((s) => s.length > 0).join(' ');
    const dflt = schema.default === undefined ? '' : code(JSON.stringify(schema.default));
    lines.push(
      `| ${[code(path), code(typeOf(schema)), required ? 'yes' : '', dflt, description].map(cell).join(' | ')} |`,
    );
  }
  const rules: RuleRow[] = [];
  // Rules on the object itself (a ReplicationTarget's name length).
  for (const r of def.schema['x-kubernetes-validations'] ?? [])
    rules.push({ path: '.', rule: r.rule, message: r.message });
  for (const name of ['spec', 'status']) {
    const s = top[name];
    if (s) rulesOf(name, s, rules);
  }
  if (rules.length > 0) {
    lines.push(
      '',
      '### Validation rules (CEL)',
      '',
      'The API server refuses an object that breaks one, with the message shown.',
      '',
    );
    lines.push('| Field | Rule | Message |', '| --- | --- | --- |');
    for (const r of rules) lines.push(`| ${[code(r.path), code(r.rule), r.message].map(cell).join(' | ')} |`);
  }
  for (const ex of examplesOf(def.kind)) {
    lines.push('', `### Example: examples/${ex.file}`, '', '```yaml', ex.text.trimEnd(), '```');
  }
  return lines.join('\n');
}

/** docs/api.md as it should be, formatted by prettier with the project's settings. */
export async function renderApiDocs(): Promise<string> {
  const intro = [
    '<!-- Generated by npm run generate:crds from src/api/schemas.ts (tools/generate-api-docs.ts); do not edit. -->',
    '',
    `# The ${API_VERSION} API`,
    '',
    `Three kinds, installed by the CRDs in \`crds/\`. \`kubectl get ${CATEGORY}\` lists them all; ` +
      '`kubectl explain managedsecret.spec` (and so on) shows the descriptions below.',
    '',
    ...KINDS.map((k) => `- [${k.kind}](#${k.kind.toLowerCase()}) (\`${k.shortNames.join('`, `')}\`)`),
    '',
    'Defaults are filled in by the API server and so appear in the stored spec. Defaults of fields inside an ' +
      'optional object (such as `target`) apply only when that object is set.',
  ].join('\n');
  const md = [intro, ...KINDS.map(kindSection)].join('\n\n') + '\n';
  const config = (await prettier.resolveConfig(API_DOCS_PATH)) ?? {};
  return prettier.format(md, { ...config, parser: 'markdown', filepath: API_DOCS_PATH });
}

export async function writeApiDocs(): Promise<string> {
  writeFileSync(API_DOCS_PATH, await renderApiDocs());
  return API_DOCS_PATH;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`wrote ${await writeApiDocs()}`);
}
