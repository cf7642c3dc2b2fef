{{/* The agent's image: repository:tag, or repository@digest when pinned. */}}
{{- define "corral.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The container's security context: NET_ADMIN alone, as uid 0 (README
"Deploying": Kubernetes gives added capabilities to non-root users only in
the bounding set, and allowPrivilegeEscalation: false forbids file
capabilities, so a non-root user could not hold NET_ADMIN at all). */}}
{{- define "corral.securityContext" -}}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsUser: 0
runAsNonRoot: false
capabilities:
  drop: [ALL]
  add: [NET_ADMIN]
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* Where scrapes go: the node's name as a label of every series. */}}
{{- define "corral.relabelings" -}}
relabelings:
- sourceLabels: [__meta_kubernetes_pod_node_name]
  targetLabel: node
{{- end -}}
