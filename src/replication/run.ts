// Starts replication next to the manager, on the leader only: the manager
// elects; this waits until it leads and stops with it (a replica that loses
// the Lease exits, so replication never runs on two replicas at once).
import { Replicator, type ReplicatorOptions } from './replicator.js';

/** What replication needs from the manager: whether it leads, and when it is done. */
export interface LeaderSource {
  isLeader(): boolean;
  readonly done: Promise<unknown>;
}

export function startReplicationOnLeader(manager: LeaderSource, options: ReplicatorOptions): Replicator {
  const replicator = new Replicator(options);
  const timer = setInterval(() => {
    if (!manager.isLeader()) return;
    clearInterval(timer);
    replicator.start();
  }, 500);
  void manager.done.then(async () => {
    clearInterval(timer);
    await replicator.stop();
  });
  return replicator;
}
