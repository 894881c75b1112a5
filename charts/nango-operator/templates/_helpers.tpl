{{/*
Expand the name of the chart.
*/}}
{{- define "nango-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "nango-operator.fullname" -}}
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
Create chart name and version as used by the chart label.
*/}}
{{- define "nango-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "nango-operator.labels" -}}
helm.sh/chart: {{ include "nango-operator.chart" . }}
{{ include "nango-operator.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "nango-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nango-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "nango-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nango-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The name of a Service: the full name with a suffix, kept to the 63 characters of a DNS label.
*/}}
{{- define "nango-operator.serviceName" -}}
{{- printf "%s-%s" (include "nango-operator.fullname" .root) .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The path the webhook receiver answers Nango's webhooks on.
*/}}
{{- define "nango-operator.webhookPath" -}}
/webhooks/nango
{{- end }}

{{/*
The name of the Secret holding the webhook signing key(s), in the release namespace.
*/}}
{{- define "nango-operator.webhookSecretName" -}}
{{- default (printf "%s-webhook" (include "nango-operator.fullname" .)) .Values.webhook.signingKeySecret.name }}
{{- end }}

{{/*
Whether the manager runs leader election: "auto" turns it on when there is more than one replica.
*/}}
{{- define "nango-operator.leaderElect" -}}
{{- $mode := .Values.leaderElection.enabled }}
{{- if eq (toString $mode) "auto" }}
{{- if gt (int .Values.replicaCount) 1 }}true{{ else }}false{{ end }}
{{- else }}
{{- $mode }}
{{- end }}
{{- end }}

{{/*
The manager image.
*/}}
{{- define "nango-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The Secret holding the metrics endpoint's certificate: cert-manager's, the one named in
metrics.tls.secretName, or empty when the manager serves a self-signed certificate.
*/}}
{{- define "nango-operator.metricsCertSecret" -}}
{{- if .Values.metrics.tls.certManager.enabled }}
{{- printf "%s-metrics-cert" (include "nango-operator.fullname" .) }}
{{- else }}
{{- .Values.metrics.tls.secretName }}
{{- end }}
{{- end }}

{{/*
Where the manager finds the metrics certificate (--metrics-cert-path).
*/}}
{{- define "nango-operator.metricsCertPath" -}}
/var/run/secrets/nango-operator/metrics-cert
{{- end }}

{{/*
The PersistentVolumeClaim holding SQLite sinks, when persistence is on.
*/}}
{{- define "nango-operator.persistenceClaim" -}}
{{- default (printf "%s-sqlite" (include "nango-operator.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
The Secret holding the bearer token the ServiceMonitor scrapes with: the one named in
metrics.serviceMonitor.authorization, or the token Secret of the chart's metrics scraper.
*/}}
{{- define "nango-operator.metricsScraperSecret" -}}
{{- default (printf "%s-metrics-scraper" (include "nango-operator.fullname" .)) .Values.metrics.serviceMonitor.authorization.secretName }}
{{- end }}
