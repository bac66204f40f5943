{{/* The chart name, or nameOverride. */}}
{{- define "secretsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name: fullnameOverride, or the release name (plus the chart name unless it holds it). */}}
{{- define "secretsync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): the full
name plus the release namespace, so that releases of the same name in
different namespaces (one per team) never collide.
*/}}
{{- define "secretsync.clusterName" -}}
{{- printf "%s-%s" (include "secretsync.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "secretsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "secretsync.labels" -}}
helm.sh/chart: {{ include "secretsync.chart" . }}
{{ include "secretsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secretsync
{{- /* The chart's own labels win over commonLabels: a repeated key would make the YAML invalid. */}}
{{- with omit (.Values.commonLabels | default dict) "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/managed-by" "app.kubernetes.io/part-of" }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The labels that select the operator's Pods. */}}
{{- define "secretsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secretsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "secretsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "secretsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "secretsync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Label matchers for this release's series in alert expressions. */}}
{{- define "secretsync.metricsSelector" -}}
{{- if .Values.metrics.prometheusRule.selector }}
{{- .Values.metrics.prometheusRule.selector }}
{{- else }}
{{- printf "namespace=%q, job=%q" .Release.Namespace (printf "%s-metrics" (include "secretsync.fullname" .)) }}
{{- end }}
{{- end }}

{{/*
RBAC rules on namespaced resources: a ClusterRole's in cluster scope, each
watched namespace's Role in namespaced scope. Exactly what the operator calls:
its informers list and watch; status is merge-patched; ManagedSecrets are
patched for the revoke-leases finalizer only; Secrets are read,
created, updated, and deleted only to re-create an immutable one; Events are
created (patch is the recorder's standard verb).
*/}}
{{- define "secretsync.namespacedRules" -}}
- apiGroups: [secretsync.io]
  resources: [managedsecrets, secretstores]
  verbs: [get, list, watch]
- apiGroups: [secretsync.io]
  resources: [managedsecrets/status, secretstores/status]
  verbs: [get, patch]
{{- /* The secretsync.io/revoke-leases finalizer on ManagedSecrets with dynamic secrets (server-side apply of metadata.finalizers only), and, with sharding, the secretsync.io/shard label (a merge patch of that label only). */}}
- apiGroups: [secretsync.io]
  resources: [managedsecrets]
  verbs: [patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.serviceAccountTokens.enabled }}
- apiGroups: [""]
  resources: [serviceaccounts/token]
  verbs: [create]
{{- end }}
{{- if .Values.caBundleConfigMaps.enabled }}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
{{- end }}
{{- if .Values.rolloutRestarts.enabled }}
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, patch]
{{- end }}
{{- end }}

{{/* RBAC rules on cluster-scoped resources: always a ClusterRole. */}}
{{- define "secretsync.clusterRules" -}}
- apiGroups: [secretsync.io]
  resources: [clustersecretstores]
  verbs: [get, list, watch]
- apiGroups: [secretsync.io]
  resources: [clustersecretstores/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- if .Values.replication.enabled }}
- apiGroups: [secretsync.io]
  resources: [replicationtargets]
  verbs: [get, list, watch]
- apiGroups: [secretsync.io]
  resources: [replicationtargets/status]
  verbs: [get, patch]
{{- end }}
{{- end }}

{{/*
The replication receiver's rules in a DR cluster: what a primary's replication
does there, and nothing more (src/replication/receiver.ts holds the same list;
an e2e test keeps them equal). Discovery needs no rule.
*/}}
{{- define "secretsync.replicationReceiverRules" -}}
- apiGroups: [secretsync.io]
  resources: [clustersecretstores, secretstores, managedsecrets]
  verbs: [get, list, watch, create, update, patch, delete]
{{- if .Values.replicationReceiver.credentials }}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, create, patch, delete]
{{- end }}
{{- end }}

{{/*
A Go-style duration (the schema has checked its form: runs of number and unit,
ms, s, m or h) in milliseconds, as a string; the operator parses it the same way
(src/controller/schedule.ts parseDuration).
*/}}
{{- define "secretsync.durationMs" -}}
{{- $unitMs := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" . -1 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $total = addf $total (mulf (float64 (trimSuffix $unit .)) (get $unitMs $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
Fails unless the duration at values path `key` is at least `min` milliseconds:
a unit typo (15ms for 15s) must fail the install, not make the operator thrash.
*/}}
{{- define "secretsync.durationAtLeast" -}}
{{- $ms := include "secretsync.durationMs" .value | float64 }}
{{- if lt $ms (float64 .min) }}
{{- fail (printf "%s: %s is shorter than %s" .key .value .minText) }}
{{- end }}
{{- end }}

{{/* Checks across values that the schema cannot express. */}}
{{- define "secretsync.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled=false needs replicaCount: 1 (replicas without a leader would all write the same Secrets)" }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- $lease := include "secretsync.durationMs" $le.leaseDuration | float64 }}
{{- $renew := include "secretsync.durationMs" $le.renewDeadline | float64 }}
{{- $retry := include "secretsync.durationMs" $le.retryPeriod | float64 }}
{{- if le $lease $renew }}
{{- fail (printf "leaderElection.renewDeadline (%s) must be shorter than leaderElection.leaseDuration (%s): the leader must stop writing before a standby may take over" $le.renewDeadline $le.leaseDuration) }}
{{- end }}
{{- if le $renew $retry }}
{{- fail (printf "leaderElection.retryPeriod (%s) must be shorter than leaderElection.renewDeadline (%s): the leader must get more than one try to renew" $le.retryPeriod $le.renewDeadline) }}
{{- end }}
{{- range $check := list
  (dict "key" "leaderElection.leaseDuration" "value" $le.leaseDuration "min" 1000 "minText" "1s")
  (dict "key" "leaderElection.retryPeriod" "value" $le.retryPeriod "min" 100 "minText" "100ms")
  (dict "key" "kubeApi.requestTimeout" "value" .Values.kubeApi.requestTimeout "min" 1000 "minText" "1s")
  (dict "key" "kubeApi.connectTimeout" "value" .Values.kubeApi.connectTimeout "min" 100 "minText" "100ms")
  (dict "key" "kubeApi.watchIdleTimeout" "value" .Values.kubeApi.watchIdleTimeout "min" 10000 "minText" "10s")
  (dict "key" "syncTimeout" "value" .Values.syncTimeout "min" 1000 "minText" "1s")
  (dict "key" "providers.requestTimeout" "value" .Values.providers.requestTimeout "min" 100 "minText" "100ms")
  (dict "key" "providers.connectTimeout" "value" .Values.providers.connectTimeout "min" 100 "minText" "100ms") }}
{{- include "secretsync.durationAtLeast" $check }}
{{- end }}
{{- if gt (int .Values.tenancy.maxWorkersPerNamespace) (int .Values.concurrency) }}
{{- fail (printf "tenancy.maxWorkersPerNamespace (%d) must not exceed concurrency (%d)" (int .Values.tenancy.maxWorkersPerNamespace) (int .Values.concurrency)) }}
{{- end }}
{{- end }}

{{/*
A (Pod)SecurityContext without the fixed user and group IDs when fixedUid is
false: OpenShift's restricted SCC assigns each namespace's Pods a UID from its
own range and refuses a Pod that asks for another (65532 is never in it).
*/}}
{{- define "secretsync.securityContext" -}}
{{- if .fixedUid }}
{{- toYaml .context }}
{{- else }}
{{- toYaml (omit .context "runAsUser" "runAsGroup" "fsGroup") }}
{{- end }}
{{- end }}
