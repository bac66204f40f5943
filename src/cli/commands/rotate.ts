// `secretsync rotate NAMESPACE/NAME` and `secretsync rollback NAMESPACE/NAME --to VERSION`:
// rotation by hand, through the API server (the operator does the work).
import { Command, Option } from 'commander';
import { ANNOTATION_ROTATE_NOW, API_VERSION, type DataItem, type ManagedSecret } from '../../api/types.js';
import { KubeClient } from '../../kube/client.js';
import type { CliIo } from '../main.js';
import { addExamples } from '../examples.js';
import { loadKubeConfig } from '../../kube/config.js';

function parseRef(ref: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(ref);
  if (!m || m[1] === undefined || m[3] === undefined)
    throw new Error(`expected NAMESPACE/NAME of a ManagedSecret, got "${ref}"`);
  return { namespace: m[1], name: m[3] };
}

const msPath = (namespace: string, name: string) =>
  `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}`;

/** The data items that read what the rotation writes: same key, and the rotated property (or any, without one). */
export function rotatedItems(ms: ManagedSecret): DataItem[] {
  const target = ms.spec.rotation?.remoteRef;
  if (!target) throw new Error(`ManagedSecret ${ms.metadata.namespace}/${ms.metadata.name} has no spec.rotation`);
  return (ms.spec.data ?? []).filter(
    (d) =>
      d.remoteRef?.key === target.key &&
      (target.property === undefined || d.remoteRef.property === undefined || d.remoteRef.property === target.property),
  );
}

/** spec.data with `version` pinned on the rotated items; the Secret keys whose source changes. */
export function pinVersion(ms: ManagedSecret, version: string): { data: DataItem[]; changed: string[] } {
  const items = new Set(rotatedItems(ms));
  if (items.size === 0)
    throw new Error(
      `no data item of ${ms.metadata.namespace}/${ms.metadata.name} reads ${ms.spec.rotation?.remoteRef.key}: nothing to pin`,
    );
  const changed: string[] = [];
  const data = (ms.spec.data ?? []).map((d) => {
    if (!items.has(d) || !d.remoteRef) return d;
    if (d.remoteRef.version !== version) changed.push(d.secretKey);
    return { ...d, remoteRef: { ...d.remoteRef, version } };
  });
  return { data, changed };
}

export function registerRotateCommands(program: Command, io: CliIo): void {
  const kube = (cmd: Command) =>
    cmd.addOption(
      new Option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config)').env('KUBECONFIG'),
    );

  const rotate = kube(program.command('rotate'))
    .description('rotate a ManagedSecret now (sets the secretsync.io/rotate-now annotation; the operator rotates once)')
    .argument('<namespace/name>', 'the ManagedSecret')
    .action(async (ref: string, opts: { kubeconfig?: string }) => {
      const { namespace, name } = parseRef(ref);
      const client = new KubeClient(await loadKubeConfig(opts.kubeconfig));
      try {
        const ms = await client.get<ManagedSecret>(msPath(namespace, name));
        if (!ms.spec.rotation) throw new Error(`ManagedSecret ${namespace}/${name} has no spec.rotation`);
        const stamp = new Date().toISOString();
        await client.request('PATCH', msPath(namespace, name), {
          body: { metadata: { annotations: { [ANNOTATION_ROTATE_NOW]: stamp } } },
          contentType: 'application/merge-patch+json',
        });
        io.out(`requested rotation of ${namespace}/${name} (${ANNOTATION_ROTATE_NOW}=${stamp})`);
      } finally {
        client.close();
      }
    });
  addExamples(rotate, [
    { command: 'secretsync rotate team-a/db', explain: 'rotate team-a/db now, in the current kubeconfig context' },
    {
      command: 'secretsync rotate team-a/db --kubeconfig ~/.kube/prod.yaml',
      explain: 'the same on another cluster',
    },
  ]);

  const rollback = kube(program.command('rollback'))
    .description(
      'pin the rotated entry to an earlier version (spec.data[].remoteRef.version) and print which Secret keys change (names only)',
    )
    .argument('<namespace/name>', 'the ManagedSecret')
    .requiredOption(
      '--to <version>',
      "the store's version id (status.rotationVersion of an earlier rotation, a number, or a label)",
    )
    .action(async (ref: string, opts: { kubeconfig?: string; to: string }) => {
      const { namespace, name } = parseRef(ref);
      if (opts.to.trim() === '' || opts.to.length > 256)
        throw new Error('--to must be a version id of at most 256 characters');
      const client = new KubeClient(await loadKubeConfig(opts.kubeconfig));
      try {
        const ms = await client.get<ManagedSecret>(msPath(namespace, name));
        const { data, changed } = pinVersion(ms, opts.to);
        if (changed.length === 0) {
          io.out(`${namespace}/${name} already reads version ${opts.to}: nothing changes`);
          return;
        }
        // resourceVersion: a concurrent edit of spec.data makes this fail instead of being overwritten.
        await client.request('PATCH', msPath(namespace, name), {
          body: { metadata: { resourceVersion: ms.metadata.resourceVersion }, spec: { data } },
          contentType: 'application/merge-patch+json',
        });
        io.out(`pinned ${namespace}/${name} to version ${opts.to}; keys that change: ${changed.join(', ')}`);
        io.out('rotation continues to write new versions; remove the version pins to follow them again');
      } finally {
        client.close();
      }
    });
  addExamples(rollback, [
    {
      command: 'secretsync rollback team-a/db --to 3',
      explain: 'team-a/db reads version 3 of the rotated entry again (status.rotationVersion of that rotation)',
    },
    {
      command: 'secretsync rollback team-a/db --to v2024-05 --kubeconfig ~/.kube/prod.yaml',
      explain: 'pin to a labelled version, on another cluster',
    },
  ]);
}
