// The permissions a replication receiver (the DR cluster identity named by a
// ReplicationTarget's kubeconfig) needs, and nothing more. The chart renders
// the same rules (replicationReceiver.* in values.yaml); an e2e test keeps the
// two equal, and the integration tests replicate with exactly these.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * Our store kinds and ManagedSecrets: listed by label (to find our copies),
 * applied (server-side apply is a patch; create for the first apply) and
 * deleted when pruned. Discovery, which tells whether the CRDs are installed,
 * is open to every authenticated identity and needs no rule.
 */
export const RECEIVER_RULES: PolicyRule[] = [
  {
    apiGroups: ['secretsync.io'],
    resources: ['clustersecretstores', 'secretstores', 'managedsecrets'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
  },
];

/** With includeCredentials: the credential Secrets replication copies (only ever ones it labelled). */
export const RECEIVER_CREDENTIAL_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'patch', 'delete'] },
];
