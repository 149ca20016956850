{{/*
Labels of the objects this chart renders itself.
*/}}
{{- define "chatbot-stack.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: chatbot-sav
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Whether the kube-prometheus-stack dependency is on (its condition value).
*/}}
{{- define "chatbot-stack.kpsEnabled" -}}
{{- $kps := index .Values "kube-prometheus-stack" | default dict }}
{{- if $kps.enabled }}true{{ end }}
{{- end }}

{{/*
The namespace of the ChatbotMonitoring (and of the chatbot it runs): the release's unless chatbot.namespace is set.
*/}}
{{- define "chatbot-stack.chatbotNamespace" -}}
{{- .Values.chatbot.namespace | default .Release.Namespace }}
{{- end }}

{{/*
kube-prometheus-stack's own full name (its "kube-prometheus-stack.fullname", cut at 26 characters), from which its
Services are named: <fullname>-prometheus, <fullname>-alertmanager.
*/}}
{{- define "chatbot-stack.kpsFullname" -}}
{{- $kps := index .Values "kube-prometheus-stack" | default dict }}
{{- if $kps.fullnameOverride }}
{{- $kps.fullnameOverride | trunc 26 | trimSuffix "-" }}
{{- else }}
{{- $name := $kps.nameOverride | default "kube-prometheus-stack" }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 26 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 26 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}
