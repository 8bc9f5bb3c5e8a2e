{{/* Names and labels shared by every Candor object. */}}
{{- define "candor.fullname" -}}
{{- printf "%s-candor" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "candor.labels" -}}
app.kubernetes.io/name: candor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "candor.selector" -}}
app.kubernetes.io/name: candor
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "candor.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "candor.fullname" .) -}}
{{- end -}}

{{/* The CANDOR_* environment every component reads its settings from. */}}
{{- define "candor.env" -}}
- name: CANDOR_KAFKA_BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: CANDOR_KAFKA__PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: CANDOR_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: CANDOR_KAFKA__MIN_INSYNC_REPLICAS
  value: {{ .Values.kafka.minInsyncReplicas | quote }}
# /metrics servers bind the pod's own address: Prometheus (PodMonitor) and the
# kubelet's probes reach it there, and nothing listens on every interface.
- name: CANDOR_METRICS_HOST
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: CANDOR_KAFKA__TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: CANDOR_CLICKHOUSE_URL
  value: {{ .Values.clickhouse.url | quote }}
- name: CANDOR_CLICKHOUSE__USER
  value: {{ .Values.clickhouse.user | quote }}
- name: CANDOR_CLICKHOUSE__DATABASE
  value: {{ .Values.clickhouse.database | quote }}
{{- with .Values.clickhouse.cluster }}
- name: CANDOR_CLICKHOUSE__CLUSTER
  value: {{ . | quote }}
{{- end }}
- name: CANDOR_CLICKHOUSE__REPLICATED
  value: {{ .Values.clickhouse.replicated | quote }}
- name: CANDOR_CLICKHOUSE__PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "candor.secretName" . }}, key: clickhouse-password}
- name: CANDOR_PRIVACY__MASTER_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "candor.secretName" . }}, key: master-key}
- name: CANDOR_PRIVACY__ANALYST_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "candor.secretName" . }}, key: analyst-password}
- name: CANDOR_HOME
  value: /var/lib/candor
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The pod security context of every component: no root, read-only root file system. */}}
{{- define "candor.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
capabilities: {drop: [ALL]}
{{- end -}}
