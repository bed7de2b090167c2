{{/* Labels on every object: the kustomize base's part-of, Helm's own, and commonLabels. */}}
{{- define "tuneloop.labels" -}}
app.kubernetes.io/part-of: tuneloop
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tuneloop.agentLabels" -}}
app.kubernetes.io/name: tuneloop-agent
app.kubernetes.io/component: agent
{{- end -}}

{{- define "tuneloop.tunerLabels" -}}
app.kubernetes.io/name: tuneloop-tuner
app.kubernetes.io/component: tuner
{{- end -}}

{{- define "tuneloop.image" -}}
{{ printf "%s:%s" .repository .tag }}
{{- end -}}

{{/* The tuner state's access modes: given, or by mode (the controller's replicas share it). */}}
{{- define "tuneloop.stateAccessModes" -}}
{{- if .Values.tuner.state.accessModes -}}
{{ toJson .Values.tuner.state.accessModes }}
{{- else if eq .Values.tuner.mode "controller" -}}
["ReadWriteMany"]
{{- else -}}
["ReadWriteOnce"]
{{- end -}}
{{- end -}}

{{/* The node affinity of a node-selection preset (empty for gpu-feature-discovery and none). */}}
{{- define "tuneloop.presetAffinity" -}}
{{- $labels := dict "gke" "cloud.google.com/gke-accelerator" "eks" "k8s.amazonaws.com/accelerator" "aks" "kubernetes.azure.com/accelerator" -}}
{{- $preset := .Values.agent.nodeSelection -}}
{{- if hasKey $labels $preset }}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      - matchExpressions:
          - key: {{ get $labels $preset }}
            operator: Exists
{{- else if eq $preset "any-gpu" }}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    # Terms are OR'ed: a node with any one of these labels runs the agent.
    nodeSelectorTerms:
      - matchExpressions:
          - key: nvidia.com/gpu.present
            operator: In
            values: ["true"]
      - matchExpressions:
          - key: cloud.google.com/gke-accelerator
            operator: Exists
      - matchExpressions:
          - key: k8s.amazonaws.com/accelerator
            operator: Exists
      - matchExpressions:
          - key: kubernetes.azure.com/accelerator
            operator: Exists
{{- end }}
{{- end -}}
