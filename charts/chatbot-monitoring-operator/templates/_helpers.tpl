{{/*
The chart's name, overridable with nameOverride; at most 63 characters (a DNS label).
*/}}
{{- define "chatbot-monitoring-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's objects. A release named like the chart ("chatbot-monitoring-operator") is not repeated.
*/}}
{{- define "chatbot-monitoring-operator.fullname" -}}
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
chart label value: name-version, with "+" (not allowed in a label) replaced.
*/}}
{{- define "chatbot-monitoring-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object of the release.
*/}}
{{- define "chatbot-monitoring-operator.labels" -}}
helm.sh/chart: {{ include "chatbot-monitoring-operator.chart" . }}
{{ include "chatbot-monitoring-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: chatbot-sav
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator's pods: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "chatbot-monitoring-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chatbot-monitoring-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "chatbot-monitoring-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chatbot-monitoring-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Whether replicas compete for the Lease: always with more than one replica, otherwise when asked.
*/}}
{{- define "chatbot-monitoring-operator.leaderElection" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.leaderElection.enabled }}true{{ else }}false{{ end }}
{{- end }}

{{/*
The operator image reference: repository@digest when image.digest is set, else repository:tag with the tag
defaulting to the chart's appVersion.
*/}}
{{- define "chatbot-monitoring-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}
