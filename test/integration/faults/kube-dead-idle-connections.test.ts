// Found by the operator-level silent-path fault (test/integration/faults/
// operator-control-plane.test.ts and the `faults` benchmark): after a network
// path to the API server went silent and came back, the operator took two
// request timeouts or more to converge, because requests kept going out on
// kept-alive connections that had been idle through the outage. Such a
// connection is as dead as the one that just timed out (the same path), but
// nothing tells the client: a half-open TCP connection never fails by itself
// (TCP keep-alive takes minutes, and a middlebox may answer it). Each request
// that picked one waited out its whole deadline.
//
// A request that got no answer within its deadline on an open connection now
// closes the client's idle connections, so the next request opens a fresh one.
import { expect } from 'chai';
import { DeadlineError } from '../../../src/api/errors.js';
import { KubeClient } from '../../../src/kube/client.js';
import { TcpFaultProxy } from '../../../tools/testenv/index.js';
import { sharedCluster, uniqueName } from '../env.js';
import { adminClient, ensureNamespace } from '../operator.js';
import { settle } from './kube-helpers.js';

const REQUEST_TIMEOUT_MS = 2_000;

describe('Kubernetes client: kept-alive connections idle through a silent path', function () {
  this.timeout(60_000);
  const ns = uniqueName('fault-idle-conns');
  let proxy: TcpFaultProxy;
  let client: KubeClient;
  let admin: KubeClient;

  before(async () => {
    const cluster = sharedCluster();
    admin = adminClient(cluster);
    await ensureNamespace(admin, ns);
    proxy = await TcpFaultProxy.inFrontOf(cluster);
    client = new KubeClient(proxy.kubeConfig(cluster), {
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      connectTimeoutMs: 500,
    });
  });

  after(async () => {
    client?.close();
    await proxy?.stop();
    await admin?.request('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('are not used again after a request timed out on one of them: the next requests succeed at once', async () => {
    const path = `/api/v1/namespaces/${ns}`;
    // Six requests at once leave six kept-alive connections idle in the pool.
    await Promise.all(Array.from({ length: 6 }, () => client.get(path)));
    const warm = proxy.accepted.length;
    expect(warm).to.be.within(2, 6);

    proxy.setMode('blackhole');
    const lost = await settle(client.get(path), REQUEST_TIMEOUT_MS * 5);
    expect(lost.error).to.be.instanceOf(DeadlineError);
    proxy.setMode('forward');

    // The path is back. Every request now answers at once; none waits out a deadline on a dead connection.
    for (let i = 0; i < 4; i++) {
      const read = await settle(client.get(path), REQUEST_TIMEOUT_MS * 5);
      expect(read.error, `request ${i + 1} after the path came back`).to.equal(undefined);
      expect(read.elapsed, `request ${i + 1} after the path came back`).to.be.below(REQUEST_TIMEOUT_MS / 2);
    }
    expect(proxy.accepted.length - warm, 'fresh connections after the outage').to.be.at.least(1);
  });
});
