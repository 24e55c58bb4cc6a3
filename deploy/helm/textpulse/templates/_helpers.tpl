{{/* Names, labels, and the pod parts every Deployment and Job shares. */}}

{{- define "textpulse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "textpulse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* (dict "root" $ "component" "dispatcher") */}}
{{- define "textpulse.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "textpulse.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "textpulse.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "textpulse.fullname" .)) -}}
{{- end -}}

{{- define "textpulse.saslEnabled" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end -}}
{{- end -}}

{{/* The Secret key holding the Kafka password of a component: (dict "root" $ "user" $kafkaUser) -> {name, key} */}}
{{- define "textpulse.kafkaPasswordRef" -}}
{{- $user := .user | default dict -}}
{{- $ref := $user.passwordSecret | default dict -}}
{{- if $ref.name -}}
{{- dict "name" $ref.name "key" ($ref.key | default "password") | toJson -}}
{{- else if .root.Values.kafka.sasl.passwordSecret.name -}}
{{- dict "name" .root.Values.kafka.sasl.passwordSecret.name "key" .root.Values.kafka.sasl.passwordSecret.key | toJson -}}
{{- else -}}
{{- dict "name" (include "textpulse.secretName" .root) "key" "TEXTPULSE_KAFKA_SASL_PASSWORD" | toJson -}}
{{- end -}}
{{- end -}}

{{/* Variables set per pod on top of the ConfigMap and Secret: (dict "root" $ "user" $kafkaUser) */}}
{{- define "textpulse.env" -}}
{{- $root := .root -}}
{{- $user := .user | default dict -}}
{{- if $root.Values.database.urlSecret.name }}
- name: TEXTPULSE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.database.urlSecret.name }}
      key: {{ $root.Values.database.urlSecret.key }}
{{- end }}
{{- if include "textpulse.saslEnabled" $root }}
{{- if $user.username }}
- name: TEXTPULSE_KAFKA_SASL_USERNAME
  value: {{ $user.username | quote }}
{{- end }}
{{- $ref := include "textpulse.kafkaPasswordRef" . | fromJson }}
- name: TEXTPULSE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end -}}

{{- define "textpulse.envFrom" -}}
- configMapRef:
    name: {{ include "textpulse.fullname" . }}-config
- secretRef:
    name: {{ include "textpulse.secretName" . }}
{{- end -}}

{{- define "textpulse.volumeMounts" -}}
# The root filesystem is read-only; uploads spool to /tmp.
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/textpulse/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientSecret.name }}
- name: kafka-client
  mountPath: /etc/textpulse/kafka-client
  readOnly: true
{{- end }}
{{- end -}}

{{- define "textpulse.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- with .Values.kafka.tls.caSecret }}
{{- if .name }}
- name: kafka-ca
  secret:
    secretName: {{ .name }}
    items:
      - {key: {{ .key | quote }}, path: ca.crt}
{{- end }}
{{- end }}
{{- with .Values.kafka.tls.clientSecret }}
{{- if .name }}
- name: kafka-client
  secret:
    secretName: {{ .name }}
    items:
      - {key: {{ .certKey | quote }}, path: client.crt}
      - {key: {{ .keyKey | quote }}, path: client.key}
{{- end }}
{{- end }}
{{- end -}}

{{/* The pod-level fields every Deployment and Job shares. */}}
{{- define "textpulse.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  {{- include "textpulse.volumes" . | nindent 2 }}
{{- end -}}

{{/* Every Deployment, as a JSON list of {component, module, role, svc}: one per service, and the opt-out workers
 (TEXTPULSE_OPTOUT_ROLE=workers) beside the opt-out edge (=edge) unless services.optout.workers.enabled is false,
 when the opt-out pods run both roles (=all). */}}
{{- define "textpulse.deployables" -}}
{{- $units := list -}}
{{- range $name, $svc := .Values.services -}}
{{- $workers := $svc.workers | default dict -}}
{{- if and (eq $name "optout") $workers.enabled -}}
{{- $units = append $units (dict "component" $name "module" $name "role" "edge" "svc" $svc) -}}
{{- $split := dict "replicas" $workers.replicas "drainSeconds" $workers.drainSeconds "resources" $workers.resources
    "staticMembership" $svc.staticMembership
    "kafkaUser" $svc.kafkaUser "pdb" $workers.pdb -}}
{{- $units = append $units (dict "component" "optout-workers" "module" $name "role" "workers" "svc" $split) -}}
{{- else if eq $name "optout" -}}
{{- $units = append $units (dict "component" $name "module" $name "role" "all" "svc" $svc) -}}
{{- else -}}
{{- $units = append $units (dict "component" $name "module" $name "role" "" "svc" $svc) -}}
{{- end -}}
{{- end -}}
{{- toJson $units -}}
{{- end -}}

{{/* Bad values stop the render with a message naming the value; every template includes this first, as helm
 renders them in no set order. */}}
{{- define "textpulse.validate" -}}
{{- $known := list "api" "audience" "dispatcher" "events" "links" "optout" "scheduler" "usage" -}}
{{- range $name, $_ := .Values.services -}}
{{- if not (has $name $known) -}}
{{- fail (printf "services.%s: no such service (the services are %s)" $name (join ", " $known)) -}}
{{- end -}}
{{- end -}}
{{- range $name := $known -}}
{{- if not (hasKey $.Values.services $name) -}}
{{- fail (printf "services.%s is missing: every service needs its entry" $name) -}}
{{- end -}}
{{- $svc := index $.Values.services $name -}}
{{- if not (regexMatch "^[1-9][0-9]*$" (toString $svc.drainSeconds)) -}}
{{- fail (printf "services.%s.drainSeconds must be a whole number of seconds, at least 1" $name) -}}
{{- end -}}
{{- end -}}
{{- $workers := .Values.services.optout.workers | default dict -}}
{{- if $workers.enabled -}}
{{- if not (regexMatch "^[1-9][0-9]*$" (toString $workers.drainSeconds)) -}}
{{- fail "services.optout.workers.drainSeconds must be a whole number of seconds, at least 1" -}}
{{- end -}}
{{- if not (regexMatch "^[1-9][0-9]*$" (toString $workers.replicas)) -}}
{{- fail "services.optout.workers.replicas must be at least 1: they apply every STOP" -}}
{{- end -}}
{{- end -}}
{{- range $key, $_ := .Values.extraConfig -}}
{{- if not (hasPrefix "TEXTPULSE_" $key) -}}
{{- fail (printf "extraConfig.%s: every setting is a TEXTPULSE_* variable (libs/common/settings.py)" $key) -}}
{{- end -}}
{{- end -}}
{{- $protocols := list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL" -}}
{{- if not (has .Values.kafka.securityProtocol $protocols) -}}
{{- fail (printf "kafka.securityProtocol=%s: use one of %s" .Values.kafka.securityProtocol (join ", " $protocols)) -}}
{{- end -}}
{{- $sasl := include "textpulse.saslEnabled" . -}}
{{- $tls := hasSuffix "SSL" .Values.kafka.securityProtocol -}}
{{- if $sasl -}}
{{- $mechanisms := list "SCRAM-SHA-512" "PLAIN" -}}
{{- if not (has .Values.kafka.sasl.mechanism $mechanisms) -}}
{{- fail (printf "kafka.sasl.mechanism=%q: %s needs one of %s" .Values.kafka.sasl.mechanism .Values.kafka.securityProtocol (join ", " $mechanisms)) -}}
{{- end -}}
{{- $users := dict "jobs" .Values.jobs.kafkaUser -}}
{{- range $name := $known -}}
{{- $_ := set $users (printf "services.%s" $name) (index $.Values.services $name).kafkaUser -}}
{{- end -}}
{{- range $who, $user := $users -}}
{{- $user = $user | default dict -}}
{{- if not (or $.Values.kafka.sasl.username $user.username) -}}
{{- fail (printf "kafka.sasl.username is empty and %s.kafkaUser.username too: %s signs in with a user" $who $.Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if not (or ($user.passwordSecret | default dict).name $.Values.kafka.sasl.passwordSecret.name $.Values.secrets.existingSecret $.Values.secrets.kafkaSaslPassword) -}}
{{- fail (printf "%s has no Kafka password: set %s.kafkaUser.passwordSecret, kafka.sasl.passwordSecret or secrets.kafkaSaslPassword" $who $who) -}}
{{- end -}}
{{- end -}}
{{- else if .Values.secrets.kafkaSaslPassword -}}
{{- fail (printf "secrets.kafkaSaslPassword is set but kafka.securityProtocol=%s does not use SASL (use SASL_SSL)" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if and (not $tls) (or .Values.kafka.tls.caSecret.name .Values.kafka.tls.clientSecret.name) -}}
{{- fail (printf "kafka.tls secrets are given but kafka.securityProtocol=%s does not use TLS (use SSL or SASL_SSL)" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if not (or .Values.secrets.existingSecret .Values.database.urlSecret.name .Values.secrets.databaseUrl) -}}
{{- fail "no database: set secrets.databaseUrl, database.urlSecret.name or secrets.existingSecret" -}}
{{- end -}}
{{- $key := .Values.secrets.secretKey -}}
{{- if and $key (lt (len $key) 32) -}}
{{- fail "secrets.secretKey must be at least 32 characters (openssl rand -base64 32)" -}}
{{- end -}}
{{- $scale := .Values.services.dispatcher.autoscaling -}}
{{- if and $scale.enabled (gt (int $scale.minReplicas) (int $scale.maxReplicas)) -}}
{{- fail "services.dispatcher.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- end -}}
