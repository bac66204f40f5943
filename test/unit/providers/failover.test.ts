// The generic failover (src/providers/failover.ts), with a provider rule of its
// own and no AWS in sight: reads move on only for what the provider calls
// unavailable, an open circuit is skipped, writes stay at the primary, and the
// error of an exhausted list is what the provider makes of it.
import { expect } from 'chai';
import { BrokenCircuitError } from 'cockatiel';
import { RegionHealth, RegionalClients } from '../../../src/providers/failover.js';
import type { FailoverMove } from '../../../src/providers/provider.js';
import { rejectionOf } from '../helpers/index.js';

class Down extends Error {}

describe('generic failover (src/providers/failover.ts)', () => {
  const targets = [
    { target: { region: 'r1', endpoint: 'https://a.example:8200' }, client: 'a' },
    { target: { region: 'r1', endpoint: 'https://b.example:8200' }, client: 'b' },
  ];
  const make = (moves: FailoverMove[] = [], onExhausted?: (last: unknown, others: string[]) => unknown) =>
    new RegionalClients(targets, {
      store: 'ClusterSecretStore s',
      provider: 'test',
      settings: { failureThreshold: 1, openSeconds: 60 },
      health: new RegionHealth(),
      isAvailable: (err) => err instanceof Down,
      onFailover: (m) => moves.push(m),
      ...(onExhausted ? { onExhausted } : {}),
    });

  it('moves on only for unavailable errors, names endpoints by host, and reports the move', async () => {
    const moves: FailoverMove[] = [];
    const c = make(moves);
    const down = new Set(['a']);
    const call = async (client: string) => {
      if (down.has(client)) throw new Down(client);
      return client;
    };
    expect(await c.run(call)).to.equal('b');
    expect(c.servedRegion()).to.deep.equal({ region: 'r1', endpoint: 'b.example:8200', primary: false });
    expect(moves).to.have.length(1);
    expect(moves[0]).to.include({ from: 'r1', to: 'r1', fromEndpoint: 'a.example:8200', toEndpoint: 'b.example:8200' });
    // Another error is the answer: not tried elsewhere.
    const refused = await rejectionOf(c.run(async () => Promise.reject(new Error('403'))));
    expect(refused.message).to.equal('403');
  });

  it('runAtPrimary never asks a secondary; an open primary circuit refuses without asking', async () => {
    const c = make();
    const asked: string[] = [];
    const err = await rejectionOf(
      c.runAtPrimary(async (client) => {
        asked.push(client);
        throw new Down(client);
      }),
    );
    expect(err).to.be.instanceOf(Down);
    const open = await rejectionOf(c.runAtPrimary(async (client) => (asked.push(client), client)));
    expect(open).to.be.instanceOf(BrokenCircuitError);
    expect(asked).to.deep.equal(['a']);
  });

  it('every target down: onExhausted turns the last error and the others tried into what is thrown', async () => {
    const c = make([], (last, others) => new Error(`${(last as Error).message} after ${others.join(', ')}`));
    const err = await rejectionOf(c.run(async (client) => Promise.reject(new Down(client))));
    expect(err.message).to.equal('b after r1 (a.example:8200)');
  });
});
