{{/* The tuner's pod spec; `args` is the subcommand line. */}}
{{- define "tuneloop.tunerPod" -}}
{{- $tuner := .root.Values.tuner }}
serviceAccountName: tuneloop-tuner
{{- if .restartPolicy }}
restartPolicy: {{ .restartPolicy }}
{{- end }}
{{- with $tuner.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- with $tuner.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tuner.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (or $tuner.affinity .affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: tuner
    image: {{ include "tuneloop.image" $tuner.image }}
    imagePullPolicy: {{ $tuner.image.pullPolicy }}
    # The image's entrypoint is the console script `tuneloop`.
    args:
      {{- toYaml .args | nindent 6 }}
    # Kubernetes Events about a change name the tuner's pod when no tuned object applies.
    env:
      - name: POD_NAME
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      - name: POD_NAMESPACE
        valueFrom:
          fieldRef:
            fieldPath: metadata.namespace
    {{- with .ports }}
    ports:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    resources:
      {{- toYaml $tuner.resources | nindent 6 }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: ["ALL"]
    volumeMounts:
      - name: config
        mountPath: /etc/tuneloop
        readOnly: true
      - name: state
        mountPath: /var/lib/tuneloop
      - name: tmp
        mountPath: /tmp
volumes:
  - name: config
    configMap:
      name: tuneloop-tuner-config
  - name: state
    persistentVolumeClaim:
      claimName: tuneloop-tuner-state
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end -}}
