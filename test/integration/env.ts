import { MotoServer, TestCluster, VaultServer } from '../../tools/testenv/index.js';

/**
 * One control plane and one moto server shared by the integration suite:
 * started once by the root hooks in setup.ts, because a cold start costs
 * seconds that every test would otherwise pay again.
 */
let cluster: TestCluster | undefined;
let moto: MotoServer | undefined;
let vault: Promise<VaultServer> | undefined;

export async function startSharedEnv(): Promise<void> {
  [cluster, moto] = await Promise.all([TestCluster.start({ name: 'integration' }), MotoServer.start()]);
}

export async function stopSharedEnv(): Promise<void> {
  const startedVault = vault;
  vault = undefined;
  await Promise.all([cluster?.stop(), moto?.stop(), startedVault?.then((v) => v.stop(), () => undefined)]);
  cluster = undefined;
  moto = undefined;
}

/**
 * The shared Vault dev server, started on first use (only the Vault tests pay
 * for it) with the Kubernetes auth method (mount `kubernetes`) pointed at the
 * shared control plane. Tests mount their own engines at unique paths.
 */
export async function sharedVault(): Promise<VaultServer> {
  vault ??= (async () => {
    const server = await VaultServer.start();
    try {
      await server.configureKubernetesAuth(sharedCluster());
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  })();
  vault.catch(() => {
    vault = undefined;
  });
  return vault;
}

export function sharedCluster(): TestCluster {
  if (!cluster) throw new Error('the shared test cluster is not running (is test/integration/setup.ts loaded?)');
  return cluster;
}

export function sharedMoto(): MotoServer {
  if (!moto) throw new Error('the shared moto server is not running (is test/integration/setup.ts loaded?)');
  return moto;
}

/** A DNS-1123 name that no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}
