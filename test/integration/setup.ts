// Root hooks for the integration suite (loaded first with mocha --file).
// A control plane that cannot start fails the suite; nothing is skipped.
import { installCrds } from './crds.js';
import { sharedCluster, startSharedEnv, stopSharedEnv } from './env.js';

before(async function () {
  this.timeout(20 * 60_000);
  await startSharedEnv();
  // Early, so kube-controller-manager's garbage collector (30 s discovery resync) knows our kinds by the time tests need it.
  await installCrds(sharedCluster());
});

after(async function () {
  this.timeout(60_000);
  await stopSharedEnv();
});
