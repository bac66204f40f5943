// Attack: a ManagedSecret whose `dataFrom.find.nameRegexp` backtracks
// catastrophically, `(a+)+$`, over a store entry named `aaa…a_`. With
// JavaScript's RegExp one test of that name takes seconds (each extra `a`
// doubles it), all of it on the operator's one event loop: every namespace's
// syncs stop meanwhile. The pattern must be evaluated in linear time (RE2) or
// refused, and another namespace's change must still sync within a second.
// A lookaround, which RE2 does not have, is refused at admission by CEL.
import { expect } from 'chai';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getSecret,
  startOperator,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import {
  admissionRefusal,
  createVictim,
  otherTenantLatencies,
  reconciled,
  startBlockMeter,
  victimSynced,
  type Blocking,
  type Victim,
} from './input-fixtures.js';

/**
 * `_` rather than the classic `!`: local store entry names allow only
 * A-Z a-z 0-9 . _ / -, and any final character that is not an `a` backtracks.
 * Thirty `a`s would take V8 minutes per test; 27 take 3 to 16 s (measured in
 * the operator and alone: 24 → 2.5 s, 25 → 4.2 s, 26 → 7.7 s alone), plenty to
 * show the blocking when the pattern runs in a backtracking engine, and short
 * enough that a run against such code ends.
 */
const HOSTILE_NAME = `${'a'.repeat(27)}_`;
const HOSTILE_PATTERN = '(a+)+$';

describe('security: a catastrophic find.nameRegexp', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const hostileNs = uniqueName('regex-hostile');
  let hostile: LocalStoreFixture;
  let victim: Victim;
  let operator: RunningOperator;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), hostileNs);
    hostile = await createLocalStore(client(), hostileNs);
    // One name the pattern backtracks on and does not match, one it matches: the pattern is really evaluated.
    await hostile.store.put(HOSTILE_NAME, { value: 'never-matched' });
    await hostile.store.put('aaa', { value: 'matched' });
    await createSecretStore(client(), hostileNs, 'local', hostile.dir);
    victim = await createVictim(client(), uniqueName('regex-victim'));
    operator = await startOperator(sharedCluster(), { namespaces: [hostileNs, victim.namespace] });
    await victimSynced(client(), victim);
  });

  after(async () => {
    await operator?.stop();
    hostile?.cleanup();
    victim?.fixture.cleanup();
  });

  it('evaluates (a+)+$ in linear time: the event loop never blocks 100 ms, and another namespace syncs within 1 s', async () => {
    const meter = startBlockMeter();
    let blocking: Blocking;
    let latencies: number[];
    try {
      await createManagedSecret(client(), hostileNs, {
        metadata: { name: 'redos' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1s',
          dataFrom: [{ find: { nameRegexp: HOSTILE_PATTERN } }],
        },
      });
      // Meanwhile (from its first reconcile through several refreshes, one a second) the other
      // namespace changes its object eight times, timed on a thread the operator cannot block.
      const otherTenant = otherTenantLatencies(sharedCluster(), victim, 8, 500);
      // Reconciled: refused (InvalidSpec), or evaluated (Synced, with only the matching entry).
      const ready = await reconciled(client(), hostileNs, 'redos', 60_000);
      expect(['Synced', 'InvalidSpec'], `Ready: ${ready.reason}: ${ready.message}`).to.include(ready.reason);
      if (ready.reason === 'Synced')
        expect(decoded(await getSecret(client(), hostileNs, 'redos'))).to.deep.equal({ aaa: 'matched' });
      latencies = await otherTenant;
    } finally {
      blocking = meter.stop();
    }
    const shown = latencies.map(Math.round).join(', ');
    expect(Math.max(...latencies), `ms until each change of the other namespace was synced: ${shown}`).to.be.below(
      1_000,
    );
    expect(
      blocking.maxBlockMs,
      `longest event-loop block while the hostile pattern was reconciled (ms; monitorEventLoopDelay max ${Math.round(blocking.loopDelayMaxMs)})`,
    ).to.be.below(100);
  });

  it('refuses a lookaround at admission, saying RE2 has none', async () => {
    const message = await admissionRefusal(sharedCluster(), hostileNs, {
      metadata: { name: 'lookahead' },
      spec: { storeRef: { name: 'local' }, dataFrom: [{ find: { nameRegexp: '^(?!tmp/).*$' } }] },
    });
    expect(message).to.contain('find.nameRegexp is RE2 syntax, which has no lookahead or lookbehind');
  });
});
