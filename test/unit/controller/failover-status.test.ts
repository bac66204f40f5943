import { expect } from 'chai';
import type { SecretStore } from '../../../src/api/types.js';
import { failoverStatus } from '../../../src/controller/failover-status.js';

function store(activeRegion?: string, activeEndpoint?: string): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'sm', namespace: 'team-a', generation: 3 },
    spec: { provider: { awsSecretsManager: { region: 'us-east-1', failover: [{ region: 'us-west-2' }] } } },
    ...(activeRegion !== undefined
      ? { status: { activeRegion, ...(activeEndpoint !== undefined ? { activeEndpoint } : {}) } }
      : {}),
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

  describe('two endpoints in one region', () => {
    const VPCE = 'vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com';
    const PUBLIC = 'secretsmanager.us-east-1.amazonaws.com';

    it('VPC endpoint → public endpoint of the same region: a move, and the messages name the endpoint hosts', () => {
      const s = failoverStatus(store('us-east-1', VPCE), { region: 'us-east-1', endpoint: PUBLIC, primary: false });
      expect(s.changed).to.equal(true);
      expect(s.condition).to.include({ status: 'True', reason: 'FailedOver' });
      expect(s.condition.message).to.equal(
        `the primary is unavailable; served by failover endpoint us-east-1 (${PUBLIC})`,
      );
      expect(s.move).to.deep.include({
        type: 'Warning',
        reason: 'FailedOver',
        from: `us-east-1 (${VPCE})`,
        to: `us-east-1 (${PUBLIC})`,
      });
      expect(s.move?.message).to.equal(`failed over from us-east-1 (${VPCE}) to endpoint us-east-1 (${PUBLIC})`);
    });

    it('back to the VPC endpoint: FailedBack naming it', () => {
      const s = failoverStatus(store('us-east-1', PUBLIC), { region: 'us-east-1', endpoint: VPCE, primary: true });
      expect(s.condition).to.include({ status: 'False', reason: 'PrimaryRegion' });
      expect(s.condition.message).to.equal(`served by the primary endpoint us-east-1 (${VPCE})`);
      expect(s.move).to.deep.include({ type: 'Normal', reason: 'FailedBack', to: `us-east-1 (${VPCE})` });
    });

    it('same region and endpoint: no change; the endpoint gone from the status is a change', () => {
      expect(
        failoverStatus(store('us-east-1', VPCE), { region: 'us-east-1', endpoint: VPCE, primary: true }).changed,
      ).to.equal(false);
      const s = failoverStatus(store('us-east-1', PUBLIC), { region: 'us-west-2', primary: false });
      expect(s.changed).to.equal(true);
      expect(s.move).to.deep.include({ from: `us-east-1 (${PUBLIC})`, to: 'us-west-2' });
    });
  });
});
