// `secretsync convert`: reads External Secrets Operator manifests (files,
// directories, or stdin; multi-document YAML, kubectl's `kind: List`) and
// writes the equivalent secretsync resources, with a report of every field not
// carried over. The conversion itself is src/convert/eso.ts (pure); this file
// only reads, writes and counts. It reads no cluster and no secret value.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { parseAllDocuments, stringify } from 'yaml';
import { convertEso, formatNote, type ConversionNote } from '../../convert/eso.js';
import { addExamples } from '../examples.js';
import type { CliIo } from '../main.js';

interface ConvertCliOptions {
  output?: string;
  report?: string;
  namespaces?: Record<string, string[]>;
  strict?: boolean;
}

/** Directory entries read as manifests. */
const MANIFEST = /\.(ya?ml|json)$/i;

/** Every manifest file under `path` (a file as is; a directory recursively, sorted). */
async function manifestFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await manifestFiles(full)));
    else if (MANIFEST.test(entry.name)) out.push(full);
  }
  return out;
}

/** The documents of one YAML stream; a syntax error names the input and the line, not its text. */
export function parseManifests(text: string, where: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const line = error.linePos?.[0]?.line;
      throw new Error(`${where}${line !== undefined ? ` line ${line}` : ''}: not valid YAML (${error.code})`);
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** `--namespaces NAME=a,b` (repeatable): the namespaces a ClusterExternalSecret's selectors select. */
function collectNamespaces(value: string, previous: Record<string, string[]> = {}): Record<string, string[]> {
  const eq = value.indexOf('=');
  const name = eq > 0 ? value.slice(0, eq) : '';
  const list =
    eq > 0
      ? value
          .slice(eq + 1)
          .split(',')
          .map((s) => s.trim().replace(/^namespace\//, ''))
      : [];
  if (!name || list.some((n) => !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)))
    throw new Error(`--namespaces takes CLUSTER_EXTERNAL_SECRET=ns[,ns...], not "${value}"`);
  return { ...previous, [name]: [...(previous[name] ?? []), ...list] };
}

export function registerConvertCommand(program: Command, io: CliIo): void {
  const convert = program
    .command('convert')
    .summary('convert External Secrets Operator manifests into secretsync resources')
    .description(
      'read ExternalSecret, ClusterExternalSecret, SecretStore and ClusterSecretStore manifests (external-secrets.io ' +
        'v1 and v1beta1; files, directories, or stdin with - or no argument) and write the equivalent SecretStores, ' +
        'ClusterSecretStores and ManagedSecrets as one YAML stream. Every field that could not be carried over is a ' +
        'line of the report (stderr, or --report FILE): skipped (the object is not converted), dropped (a field left ' +
        'out) or changed (carried over with a difference to check). Reads no cluster and no secret value. ' +
        'docs/migrating-from-eso.md walks through a migration.',
    )
    .argument('[paths...]', 'manifest files or directories (default: stdin)')
    .option('-o, --output <file>', 'write the converted resources here (default: stdout)')
    .option('--report <file>', 'write the report here (default: stderr)')
    .option(
      '--namespaces <name=ns,...>',
      "the namespaces a ClusterExternalSecret's namespaceSelector selects (kubectl get namespaces -l ...); repeatable",
      collectNamespaces,
    )
    .option('--strict', 'exit 1 when anything was skipped or dropped')
    .action(async (paths: string[], opts: ConvertCliOptions) => {
      const docs: unknown[] = [];
      if (paths.length === 0 || (paths.length === 1 && paths[0] === '-'))
        docs.push(...parseManifests((await io.readStdin()).toString('utf8'), 'stdin'));
      else
        for (const path of paths)
          for (const file of await manifestFiles(path))
            docs.push(...parseManifests(await readFile(file, 'utf8'), file));

      const { objects, notes } = convertEso(docs, { selectedNamespaces: opts.namespaces ?? {} });
      const yaml = objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
      if (opts.output) await writeFile(opts.output, yaml);
      else if (yaml) io.out(yaml.trimEnd());

      const lines = [...notes.map(formatNote), summary(objects.length, notes)];
      if (opts.report) await writeFile(opts.report, `${lines.join('\n')}\n`);
      else lines.forEach((l) => io.err(l));
      if (opts.strict && notes.some((n) => n.severity !== 'changed'))
        throw new Error('--strict: some objects or fields were not carried over (see the report)');
    });
  addExamples(convert, [
    {
      command:
        'kubectl get externalsecrets.external-secrets.io,secretstores.external-secrets.io -A -o yaml | secretsync convert > secretsync.yaml',
      explain: 'every ExternalSecret and SecretStore of the cluster, converted (values are never read)',
    },
    {
      command: 'secretsync convert eso/ -o secretsync.yaml --report convert-report.txt',
      explain: 'a directory of manifests, with the report of what was not carried over in a file',
    },
    {
      command: 'secretsync convert ces.yaml --namespaces shared-db=team-a,team-b',
      explain: 'a ClusterExternalSecret whose namespaceSelector picks team-a and team-b',
    },
  ]);
}

function summary(converted: number, notes: ConversionNote[]): string {
  const count = (s: string) => notes.filter((n) => n.severity === s).length;
  return `converted ${converted} objects; ${count('skipped')} skipped, ${count('dropped')} fields dropped, ${count('changed')} changes to check`;
}
