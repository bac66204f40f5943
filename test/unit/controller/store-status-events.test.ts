// planStoreStatus and the EventsDegraded condition: set while a source runs,
// changed only when it changes, and removed once the store declares no events.
import { expect } from 'chai';
import { API_VERSION, type AnyStore, type Condition } from '../../../src/api/types.js';
import { planStoreStatus } from '../../../src/controller/store-reconciler.js';

const ready = { type: 'Ready', status: 'True' as const, reason: 'Valid', message: 'ok', observedGeneration: 1 };
const degraded = { type: 'EventsDegraded', status: 'True' as const, reason: 'StoreUnreadable', message: 'x' };

function store(events: boolean, conditions: Condition[] = []): AnyStore {
  return {
    apiVersion: API_VERSION,
    kind: 'SecretStore',
    metadata: { name: 's', namespace: 'a', generation: 1 },
    spec: {
      provider: {
        local: {
          path: '/x',
          masterKeySecretRef: { name: 'mk' },
          ...(events ? { events: { watch: true as const } } : {}),
        },
      },
    },
    status: { conditions, observedGeneration: 1 },
  };
}

const at = '2026-12-05T00:00:00Z';

describe('planStoreStatus: EventsDegraded', () => {
  it('adds the condition the events source reports, and patches nothing when it is unchanged', () => {
    const { patch } = planStoreStatus(store(true, [{ ...ready, lastTransitionTime: at }]), ready, undefined, degraded);
    expect(patch?.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ['Ready', 'True', 'Valid'],
      ['EventsDegraded', 'True', 'StoreUnreadable'],
    ]);
    const same = planStoreStatus(store(true, patch?.conditions), ready, undefined, degraded);
    expect(same.patch).to.equal(undefined);
  });

  it('removes it when the store no longer declares events', () => {
    const before = [
      { ...ready, lastTransitionTime: at },
      { ...degraded, lastTransitionTime: at },
    ];
    const { patch } = planStoreStatus(store(false, before), ready, undefined, undefined);
    expect(patch?.conditions?.map((c) => c.type)).to.deep.equal(['Ready']);
  });

  it('keeps it while the store declares events but no source reports (the client is being rebuilt)', () => {
    const before = [
      { ...ready, lastTransitionTime: at },
      { ...degraded, lastTransitionTime: at },
    ];
    expect(planStoreStatus(store(true, before), ready, undefined, undefined).patch).to.equal(undefined);
  });
});
