// The hostile scenario: a namespace that does everything a ManagedSecret's
// author can do against the operator at once, beside a normal one. Measures
// what the targets are about: memory against the chart's limit, the
// event loop, and the normal namespace's changes.
import { randomBytes } from 'node:crypto';
import { API_VERSION, type ManagedSecret } from '../../src/api/types.js';
import { crdObjects } from '../../src/api/install.js';
import { KubeApiError } from '../../src/kube/client.js';
import { waitFor } from '../../tools/testenv/index.js';
import { latencyFigures, measureChanges } from '../lib/changes.js';
import {
  OperatorProcess,
  benchNamespace,
  chartMemoryLimitMiB,
  diffCounters,
  operatorCounters,
  type BenchContext,
  type Figures,
} from '../lib/context.js';
import {
  Progress,
  createManagedSecrets,
  entryName,
  localSpec,
  localStoreNamespace,
  msPath,
  timeoutFor,
  type LocalFixture,
} from '../lib/fixtures.js';
import { OperatorSampler } from '../lib/sampler.js';
import {
  ReasonCensus,
  createNoisyManagedSecrets,
  createObjects,
  hangingServer,
  hangingStores,
  type HangingServer,
  type NoisyMix,
} from '../lib/tenants.js';
import { round, seconds, sleep } from '../lib/util.js';
import { CHANGE_PACE_MS, QUIET_SIZE } from './noisy-neighbour.js';

/** A Secret type the cluster acts on (the token controller mints a token into it): refused by CRD and operator. */
const FORBIDDEN_TYPE = 'kubernetes.io/service-account-token';
/** Bytes of the value the amplifying template repeats. */
const AMPLIFIED_VALUE_BYTES = 64 * 1024;
/** Bytes of the value near the Secret bound that the `big` objects write (the bound is 1 MiB). */
const BIG_VALUE_BYTES = 900_000;
/** Template keys × characters of a fat spec: about 1 MB of template source, 15 × the 64 KiB bound. */
const FAT_TEMPLATE_KEYS = 16;
const FAT_TEMPLATE_CHARS = 60_000;
/** `a`s in the regex entries' names: `(a+)+$` over 40 `a`s and a `-b` backtracks 2^40 ways in JavaScript's RegExp. */
const REGEX_RUN = 40;

/** The failing objects' name prefix: after amplify, big, fat, floor, forbidden, regex, regexcompile. */
const FAILING_PREFIX = 'zfailing';

const clamp = (x: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, Math.floor(x)));

/** How many of each hostile kind at size N (N itself is the failing objects), `overrides` replacing any. */
export function hostileMix(n: number, overrides: Record<string, number> = {}) {
  const few = clamp(n / 20, 5, 50);
  const mix = {
    failing: { failing: n, floor: clamp(n / 10, 5, 100), hangingStores: Math.min(16, Math.max(1, Math.floor(n / 20))) } as NoisyMix,
    /** find with `(a+)+$` over names it matches and names that make a backtracking engine explode. */
    regex: few,
    /** Distinct patterns just under the 2,000-instruction bound, more than the compiled-pattern cache holds, on a 1ms refresh. */
    regexCompile: clamp(n / 5, 5, 200),
    /** A template repeating a 64 KiB value 9,000 times (590 MB if rendered). */
    amplify: few,
    /** Specs carrying about 1 MB of template source (the API server admits them; the operator refuses them). */
    fat: few,
    /** target.type kubernetes.io/service-account-token, created while the CRD lacked the rule. */
    forbidden: few,
    /** Secrets of 900 KB, just under the 1 MiB bound, on a 1ms refresh. */
    big: clamp(n / 50, 2, 20),
  };
  for (const [kind, count] of Object.entries(overrides)) {
    if (kind === 'failing' || kind === 'floor' || kind === 'hangingStores') mix.failing[kind] = count;
    else if (kind in mix && kind !== 'failing') (mix as unknown as Record<string, number>)[kind] = count;
    else throw new Error(`hostile mix: unknown kind "${kind}"`);
  }
  if (mix.failing.floor < 1) throw new Error('hostile mix: floor must be at least 1 (the other kinds read its entries)');
  return mix;
}

/**
 * 10. hostile: one operator watches a normal namespace (50 ManagedSecrets) and
 * a hostile one holding N failing ManagedSecrets (missing keys, stores that
 * never answer, a tenth on `refreshInterval: 1ms`) and every kind of hostile
 * spec we know of: a catastrophic regular expression over matching names,
 * regular expressions that are costly to compile, an amplifying template, specs
 * of about 1 MB, a Secret type the cluster acts on (created while the CRD
 * lacked its rule, the way objects admitted before an upgrade are), and Secrets
 * just under the size bound. The operator starts with all of it in place.
 * Figures: peak RSS against the chart's memory limit, the longest event-loop
 * delay (1 s windows), and the normal namespace's change latency.
 * Targets: RSS under the limit, no event-loop block over 100 ms, p99 < 1 s.
 */
export async function hostileScenario(ctx: BenchContext, n: number): Promise<Figures> {
  const changes = Math.max(10, ctx.options.changes);
  const mix = hostileMix(n, ctx.options.hostileMix);
  const normal = benchNamespace('normal');
  const hostile = benchNamespace('hostile');
  ctx.log(`hostile: normal namespace ${normal} (${QUIET_SIZE}), hostile namespace ${hostile} (N = ${n})`);
  const fixture = await localStoreNamespace(ctx, normal, QUIET_SIZE);
  await createManagedSecrets(ctx, normal, QUIET_SIZE, (i) => localSpec(i, '1h'));
  const progress = await new Progress(ctx.kube, normal).start();
  const census = new ReasonCensus(ctx.kube, hostile);
  let hostileStore: LocalFixture | undefined;
  let hanging: HangingServer | undefined;
  let operator: OperatorProcess | undefined;
  let sampler: OperatorSampler | undefined;
  try {
    hanging = await hangingServer();
    hostileStore = await localStoreNamespace(ctx, hostile, mix.failing.floor);
    const admission = await hostileObjects(ctx, hostile, hostileStore, hanging.url, mix);
    await census.start();

    operator = await OperatorProcess.start(ctx, {
      namespaces: [normal, hostile],
      args: ['--allowed-endpoints', hanging.url],
    });
    sampler = new OperatorSampler(operator);
    await progress.waitAll(QUIET_SIZE, timeoutFor(QUIET_SIZE));
    const normalReadySeconds = seconds(Date.now() - operator.startedAt);
    ctx.log(`hostile: normal namespace Ready ${normalReadySeconds} s after spawn`);

    // Every hostile spec has been looked at once (bounded: a hanging store may hold some for the sync deadline).
    const special = (name: string) => !name.startsWith(`${FAILING_PREFIX}-`);
    const specialCount = mix.regex + mix.regexCompile + mix.amplify + mix.fat + mix.forbidden + mix.big + mix.failing.floor;
    const lookedAtBy = Date.now() + 120_000;
    while (census.withStatus(special) < specialCount && Date.now() < lookedAtBy) await sleep(500);
    const allLookedAtSeconds = seconds(Date.now() - operator.startedAt);

    ctx.log(`hostile: ${changes} changes in the normal namespace`);
    const atStart = operatorCounters(await sampler.scrape());
    const windowStart = Date.now();
    const latencies = await measureChanges(
      ctx,
      { namespace: normal, fixture, progress, objects: QUIET_SIZE },
      changes,
      CHANGE_PACE_MS,
    );
    // Two more refresh floors (10 s each) for the 1ms objects, while sampling goes on.
    await sleep(Math.max(0, 20_000 - (Date.now() - windowStart)));
    const windowSeconds = (Date.now() - windowStart) / 1000;
    const during = diffCounters(operatorCounters(await sampler.scrape()), atStart);
    const total = operatorCounters(await sampler.scrape());
    const peakRssMiB = operator.peakRssMiB();
    const sampled = await sampler.stop();
    sampler = undefined;
    const limit = chartMemoryLimitMiB();
    return {
      normalManagedSecrets: QUIET_SIZE,
      hostileFailing: mix.failing.failing,
      hostileHangingStores: mix.failing.hangingStores,
      hostileFloorRefresh: mix.failing.floor,
      hostileRegex: mix.regex,
      hostileRegexCompile: mix.regexCompile,
      hostileAmplify: mix.amplify,
      hostileFat: mix.fat,
      hostileForbidden: mix.forbidden,
      hostileBig: mix.big,
      forbiddenTypeAtAdmission: admission,
      normalReadySeconds,
      allLookedAtSeconds,
      memoryLimitMiB: limit,
      peakRssMiB: round(peakRssMiB, 1),
      peakRssPercentOfLimit: round((peakRssMiB / limit) * 100, 1),
      eventLoopStartupMs: sampled.eventLoopStartupMs,
      eventLoopMaxMs: sampled.eventLoopMaxMs,
      eventLoopWindowsOver100Ms: sampled.eventLoopOver100Ms,
      eventLoopWindowsOver100MsAt: sampled.eventLoopOver100MsAt.join(' '),
      eventLoopWindowP99Ms: sampled.eventLoopWindowP99Ms,
      eventLoopWindows: sampled.samples,
      ...latencyFigures('normal', latencies),
      windowSeconds: round(windowSeconds, 1),
      errorsPerSecond: round(during.syncsError / windowSeconds, 1),
      syncsPerSecond: round((during.syncsError + during.syncsSynced + during.syncsUnchanged) / windowSeconds, 1),
      syncErrorsTotal: total.syncsError,
      hangingConnections: hanging.hits,
      queueDepthMax: sampled.queueDepthMax,
      hostileReady: census.byKind(),
    };
  } finally {
    await sampler?.stop();
    await operator?.stop();
    await census.stop();
    await progress.stop();
    await hanging?.close();
    fixture.cleanup();
    hostileStore?.cleanup();
  }
}

/** Creates every hostile object; returns what admission said to the forbidden Secret type. */
async function hostileObjects(
  ctx: BenchContext,
  namespace: string,
  store: LocalFixture,
  hangingUrl: string,
  mix: ReturnType<typeof hostileMix>,
): Promise<string> {
  const { floor } = mix.failing;
  // Entries: names `(a+)+$` matches (they end in a run of a's) and names that make it backtrack (the run, then -b).
  for (let i = 0; i < mix.regex; i++) {
    await store.store.put(`rx/${i}/${'a'.repeat(REGEX_RUN)}`, { v: `match-${i}` });
    await store.store.put(`rx/${i}/${'a'.repeat(REGEX_RUN)}-b`, { v: `no-match-${i}` });
  }
  await store.store.put('amp/value', { big: 'x'.repeat(AMPLIFIED_VALUE_BYTES) });
  await store.store.put('huge/value', { v: randomBytes(BIG_VALUE_BYTES / 2).toString('hex') });
  await hangingStores(ctx, namespace, hangingUrl, mix.failing.hangingStores);
  // Named to sort after every other kind: the operator's first list (and so its queue) is in name
  // order, and every kind must be looked at while the failing ones keep the namespace busy.
  await createNoisyManagedSecrets(ctx, namespace, mix.failing, undefined, FAILING_PREFIX);

  const specs: { name: string; spec: ManagedSecret['spec'] }[] = [];
  const local = { name: 'local' };
  for (let i = 0; i < mix.regex; i++)
    specs.push({ name: `regex-${i}`, spec: { storeRef: local, dataFrom: [{ find: { nameRegexp: '(a+)+$' } }] } });
  for (let i = 0; i < mix.regexCompile; i++)
    specs.push({
      name: `regexcompile-${i}`,
      spec: {
        storeRef: local,
        refreshInterval: '1ms',
        dataFrom: [{ find: { nameRegexp: `[a-z]{1,450}x[a-z]{1,450}y${i}` } }],
      },
    });
  for (let i = 0; i < mix.amplify; i++)
    specs.push({
      name: `amplify-${i}`,
      spec: {
        storeRef: local,
        refreshInterval: '1ms',
        data: [{ secretKey: 'big', remoteRef: { key: 'amp/value', property: 'big' } }],
        target: { template: { data: { out: '{{big}}'.repeat(9_000) } } },
      },
    });
  for (let i = 0; i < mix.fat; i++)
    specs.push({
      name: `fat-${i}`,
      spec: {
        storeRef: local,
        data: [{ secretKey: 'a', remoteRef: { key: entryName(i % floor), property: 'a' } }],
        target: {
          template: {
            data: Object.fromEntries(
              Array.from({ length: FAT_TEMPLATE_KEYS }, (_, k) => [`k${k}`, `${'#'.repeat(FAT_TEMPLATE_CHARS)}{{a}}`]),
            ),
          },
        },
      },
    });
  for (let i = 0; i < mix.big; i++)
    specs.push({
      name: `big-${i}`,
      spec: { storeRef: local, refreshInterval: '1ms', data: [{ secretKey: 'v', remoteRef: { key: 'huge/value', property: 'v' } }] },
    });
  await createObjects(ctx, namespace, specs);

  const forbidden = Array.from({ length: mix.forbidden }, (_, i) => ({
    name: `forbidden-${i}`,
    spec: { ...localSpec(i % floor, '1h'), target: { type: FORBIDDEN_TYPE } } as ManagedSecret['spec'],
  }));
  const admission = await tryCreate(ctx, namespace, { name: 'forbidden-at-admission', spec: forbidden[0]?.spec ?? localSpec(0, '1h') });
  await withoutTargetTypeRule(ctx, namespace, () => createObjects(ctx, namespace, forbidden));
  return admission;
}

/** POSTs one ManagedSecret (dry run unless told): "admitted" or "refused (HTTP <status>)". */
async function tryCreate(
  ctx: BenchContext,
  namespace: string,
  obj: { name: string; spec: ManagedSecret['spec'] },
  dryRun = true,
): Promise<string> {
  try {
    await ctx.kube.request('POST', `${msPath(namespace)}${dryRun ? '?dryRun=All' : ''}`, {
      body: { apiVersion: API_VERSION, kind: 'ManagedSecret', metadata: { name: obj.name }, spec: obj.spec },
    });
    return 'admitted';
  } catch (err) {
    if (err instanceof KubeApiError) return `refused (HTTP ${err.status})`;
    throw err;
  }
}

const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

interface CrdJson {
  metadata: { name: string; resourceVersion?: string };
  spec: { versions: { schema?: { openAPIV3Schema?: SchemaJson } }[] };
}
interface SchemaJson {
  properties?: Record<string, SchemaJson>;
  'x-kubernetes-validations'?: unknown[];
}

/**
 * Runs `fn` while the ManagedSecret CRD has no rule on `spec.target.type` (as
 * before the rule existed), then puts the CRD back and waits until the API
 * server refuses the type again. The rule is restored whatever `fn` does.
 */
async function withoutTargetTypeRule(ctx: BenchContext, namespace: string, fn: () => Promise<void>): Promise<void> {
  const crd = crdObjects().find((c) => c.spec.names.plural === 'managedsecrets');
  if (!crd) throw new Error('no ManagedSecret CRD among crdObjects()');
  const name = crd.metadata.name;
  const read = async (): Promise<CrdJson> => {
    const res = await ctx.cluster.adminRequest('GET', `${CRD_PATH}/${name}`);
    if (res.status !== 200) throw new Error(`reading CRD ${name}: HTTP ${res.status}`);
    return JSON.parse(res.body) as CrdJson;
  };
  const put = async (body: CrdJson) => {
    const res = await ctx.cluster.adminRequest('PUT', `${CRD_PATH}/${name}`, body);
    if (res.status !== 200) throw new Error(`replacing CRD ${name}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  };
  const probe = {
    name: 'forbidden-probe',
    spec: { ...localSpec(0, '1h'), target: { type: FORBIDDEN_TYPE } } as ManagedSecret['spec'],
  };
  const original = await read();
  const lifted = JSON.parse(JSON.stringify(original)) as CrdJson;
  for (const version of lifted.spec.versions) {
    const type = version.schema?.openAPIV3Schema?.properties?.spec?.properties?.target?.properties?.type;
    if (type) delete type['x-kubernetes-validations'];
  }
  await put(lifted);
  try {
    await waitFor(
      'the API server to admit the forbidden Secret type',
      async () => ((await tryCreate(ctx, namespace, probe)) === 'admitted' ? true : undefined),
      30_000,
    );
    await fn();
  } finally {
    const current = await read();
    await put({ ...original, metadata: { ...original.metadata, resourceVersion: current.metadata.resourceVersion } });
    await waitFor(
      'the API server to refuse the forbidden Secret type again',
      async () => ((await tryCreate(ctx, namespace, probe)) !== 'admitted' ? true : undefined),
      30_000,
    );
  }
}
