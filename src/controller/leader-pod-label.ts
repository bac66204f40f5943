// Marks the leader's own Pod with the label `secretsync.io/leader: "true"`, so
// that a Service can send traffic only to the replica that acts on it: the
// signed change-notification webhook is answered by the leader alone (a
// standby answers 503), and with the chart's two replicas half of all
// notifications would otherwise hit a standby. This is the pattern Patroni and
// others use (a role label and a Service selecting it), with Kubernetes as the
// only source of truth: the label follows the Lease, it decides nothing.
//
// A replica removes the label from its Pod when it starts (a container
// restarted in the same Pod must not keep a stale one) and when it stops; a
// replica that dies without removing it is either restarted in the same Pod
// (which removes it at start) or its Pod is gone. Between a leader's death and
// the Service noticing, a notification may reach a Pod that no longer answers:
// the sender retries, as it must for any 5xx.
import { errorMessage, type Logger } from '../observability/logger.js';
import type { KubeClient } from '../kube/client.js';

export const LABEL_LEADER = 'secretsync.io/leader';

/** What the labeller watches: the manager (leadership and its end). */
export interface LeadershipSource {
  isLeader(): boolean;
  readonly done: Promise<unknown>;
}

export interface LeaderPodLabelOptions {
  /** The Pod this replica runs in (POD_NAMESPACE / POD_NAME from the downward API). */
  namespace: string;
  podName: string;
  log: Logger;
  /** How often leadership is looked at. Default 500 ms. */
  pollMs?: number;
}

export interface LeaderPodLabel {
  /** Resolves when the label is removed (after the manager stopped) or removal failed. */
  readonly stopped: Promise<void>;
}

/** Keeps the leader label on this replica's Pod while it leads, and off otherwise. */
export function labelPodWhileLeading(
  source: LeadershipSource,
  kube: KubeClient,
  options: LeaderPodLabelOptions,
): LeaderPodLabel {
  const path = `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods/${encodeURIComponent(options.podName)}`;
  let labelled: boolean | undefined;
  let done = false;
  // One PATCH at a time, in order: the removal at the end never overtakes a late "true".
  let chain: Promise<void> = Promise.resolve();
  const warn = (err: unknown, what: string) =>
    options.log.warn(what, { pod: options.podName, error: errorMessage(err) });
  const setLabel = async (leading: boolean): Promise<void> => {
    await kube.request('PATCH', path, {
      contentType: 'application/merge-patch+json',
      // Setting or removing one label is the same whatever the Pod holds: repeatable.
      idempotent: true,
      body: { metadata: { labels: { [LABEL_LEADER]: leading ? 'true' : null } } },
      discardBody: true,
    });
    labelled = leading;
    options.log.info(leading ? 'labelled this Pod as the leader' : 'removed the leader label from this Pod', {
      pod: options.podName,
    });
  };
  const tick = () => {
    chain = chain.then(async () => {
      const leading = source.isLeader();
      if (done || labelled === leading) return;
      // Retried at the next tick; without the label the webhook Service only routes nowhere, it writes nothing.
      await setLabel(leading).catch((err: unknown) => warn(err, 'could not update the leader label of this Pod'));
    });
  };
  const timer = setInterval(tick, options.pollMs ?? 500);
  tick();
  const stopped = source.done.then(async () => {
    done = true;
    clearInterval(timer);
    await chain;
    await setLabel(false).catch((err: unknown) => warn(err, 'could not remove the leader label of this Pod'));
  });
  return { stopped };
}
