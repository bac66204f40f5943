// `npm run bench [-- --scenario NAME[,NAME…]] [--n N]`: starts a control plane
// (and moto when a scenario needs AWS), runs the scenarios (all but the opt-in
// `faults` unless named), prints a table and writes one JSON file to bench/results/.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MotoServer, TestCluster } from '../tools/testenv/index.js';
import { installCrds } from '../test/integration/crds.js';
import { adminKube, defaultOptions, type BenchContext } from './lib/context.js';
import { DEFAULT_SCENARIOS, SCENARIOS, formatReport, runScenarios, writeReport } from './lib/runner.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    n: { type: 'string', default: '1000' },
    unrelated: { type: 'string' },
    'refresh-seconds': { type: 'string' },
    concurrency: { type: 'string' },
    'operator-arg': { type: 'string', multiple: true },
    'cpu-prof-dir': { type: 'string' },
    'heap-snapshot-dir': { type: 'string' },
    // Counts of the hostile scenario's kinds, e.g. fat=200,big=0 (see bench/scenarios/hostile.ts).
    'hostile-mix': { type: 'string' },
    // The operator from src/ through the tsx loader instead of the compiled dist/.
    source: { type: 'boolean', default: false },
  },
});

const n = Number(values.n);
if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer, got ${values.n}`);
const names = values.scenario ? values.scenario.split(',').map((s) => s.trim()) : [...DEFAULT_SCENARIOS];
for (const name of names)
  if (!SCENARIOS[name]) throw new Error(`unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);

const options = defaultOptions();
if (values.unrelated) options.unrelated = Number(values.unrelated);
if (values['refresh-seconds']) options.refreshSeconds = Number(values['refresh-seconds']);
if (values.concurrency) options.operatorConcurrency = Number(values.concurrency);
if (values['operator-arg']) options.operatorArgs = values['operator-arg'];
if (values['cpu-prof-dir']) options.cpuProfDir = values['cpu-prof-dir'];
if (values['heap-snapshot-dir']) options.heapSnapshotDir = resolve(values['heap-snapshot-dir']);
if (values.source) options.compiled = false;
if (values['hostile-mix'])
  options.hostileMix = Object.fromEntries(
    values['hostile-mix'].split(',').map((pair) => {
      const [kind = '', count = ''] = pair.split('=');
      if (!/^\d+$/.test(count)) throw new Error(`--hostile-mix: "${pair}" is not KIND=COUNT`);
      return [kind.trim(), Number(count)];
    }),
  );

const log = (message: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
log('starting the control plane');
const cluster = await TestCluster.start({ name: 'bench' });
let moto: Promise<MotoServer> | undefined;
try {
  await installCrds(cluster);
  const ctx: BenchContext = {
    cluster,
    kube: adminKube(cluster),
    moto: () => (moto ??= MotoServer.start()),
    options,
    log,
    results: new Map(),
  };
  const report = await runScenarios(ctx, names, n);
  process.stdout.write(`${formatReport(report)}\n`);
  log(`wrote ${writeReport(report)}`);
  if (report.results.some((r) => !r.ok)) process.exitCode = 1;
} finally {
  await (await moto)?.stop();
  await cluster.stop();
}
