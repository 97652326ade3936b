{{/* Chart name, shortened to fit a label. */}}
{{- define "nettune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: the release name, with the chart name unless the release name has it. */}}
{{- define "nettune.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "nettune.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: nettune
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The operator's pod selector. */}}
{{- define "nettune.operator.selectorLabels" -}}
app.kubernetes.io/name: nettune-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nettune.operator.name" -}}
{{- printf "%s-operator" (include "nettune.fullname" .) -}}
{{- end -}}

{{- /* The webhook serving certificate's Secret: the operator's own, or the one cert-manager writes. */ -}}
{{- define "nettune.webhook.certSecret" -}}
{{- printf "%s-webhook-%s" (include "nettune.operator.name" .) (ternary "certs" "tls" (eq .Values.operator.webhook.certificate.source "operator")) -}}
{{- end -}}

{{- define "nettune.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "nettune.operator.name" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Fixed by the operator (Names.AgentServiceAccount, Names.AgentApp): it creates the agent's ServiceAccount and DaemonSet. */}}
{{/* The node components' namespace: the agent DaemonSet and the data-plane pods (Pod Security level privileged). */}}
{{- define "nettune.nodeNamespace" -}}
{{- default (printf "%s-node" .Release.Namespace) .Values.nodeNamespace.name -}}
{{- end -}}
{{- define "nettune.agent.serviceAccountName" -}}nettune-agent{{- end -}}
{{- define "nettune.agent.appName" -}}nettune-agent{{- end -}}
{{- define "nettune.agent.metricsPort" -}}{{ .Values.agent.metricsPort }}{{- end -}}
{{- define "nettune.dataplane.appName" -}}nettune-dataplane{{- end -}}

{{- /* repository@digest when a digest is given, else repository:tag (the tag defaults to the appVersion). */ -}}
{{- define "nettune.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}
