import { expect } from 'chai';
import type { SecretStore } from '../../../src/api/types.js';
import { failoverStatus } from '../../../src/controller/failover-status.js';

function store(activeRegion?: string): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'sm', namespace: 'team-a', generation: 3 },
    spec: { provider: { awsSecretsManager: { region: 'us-east-1', failover: [{ region: 'us-west-2' }] } } },
    ...(activeRegion !== undefined ? { status: { activeRegion } } : {}),
  };
}

describe('failover status of a store', () => {
  it('first record in the primary: condition False (PrimaryRegion), no Event', () => {
    const s = failoverStatus(store(), { region: 'us-east-1', primary: true });
    expect(s.condition).to.include({
      type: 'Failover',
      status: 'False',
      reason: 'PrimaryRegion',
      observedGeneration: 3,
    });
    expect(s.changed).to.equal(true);
    expect(s.move).to.equal(undefined);
  });

  it('primary → failover region: condition True (FailedOver) and a Warning Event naming both regions', () => {
    const s = failoverStatus(store('us-east-1'), { region: 'us-west-2', primary: false });
    expect(s.condition).to.include({ type: 'Failover', status: 'True', reason: 'FailedOver' });
    expect(s.condition.message).to.contain('us-west-2');
    expect(s.move).to.deep.include({ type: 'Warning', reason: 'FailedOver', from: 'us-east-1', to: 'us-west-2' });
  });

  it('back to the primary: a Normal FailedBack Event', () => {
    const s = failoverStatus(store('us-west-2'), { region: 'us-east-1', primary: true });
    expect(s.condition).to.include({ status: 'False', reason: 'PrimaryRegion' });
    expect(s.move).to.deep.include({ type: 'Normal', reason: 'FailedBack', from: 'us-west-2', to: 'us-east-1' });
  });

  it('no move: nothing changed, no Event', () => {
    const s = failoverStatus(store('us-west-2'), { region: 'us-west-2', primary: false });
    expect(s.changed).to.equal(false);
    expect(s.move).to.equal(undefined);
  });
});
