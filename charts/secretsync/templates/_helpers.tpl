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
its informers list and watch; status is merge-patched; Secrets are read,
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

{{/* Checks across values that the schema cannot express. */}}
{{- define "secretsync.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled=false needs replicaCount: 1 (replicas without a leader would all write the same Secrets)" }}
{{- end }}
{{- end }}
