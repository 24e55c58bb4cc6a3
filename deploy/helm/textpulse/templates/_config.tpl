{{/* The ConfigMap's settings, each a TEXTPULSE_* variable of libs/common/settings.py. */}}
{{- define "textpulse.configData" -}}
TEXTPULSE_ENV: {{ .Values.environment | quote }}
TEXTPULSE_LOG_LEVEL: {{ .Values.logLevel | quote }}
TEXTPULSE_LOG_FORMAT: "json"
TEXTPULSE_HTTP_HOST: "0.0.0.0"
TEXTPULSE_HTTP_PORT: "8000"
TEXTPULSE_PUBLIC_BASE_URL: {{ .Values.publicBaseUrl | quote }}
TEXTPULSE_SHORT_LINK_BASE_URL: {{ .Values.shortLinkBaseUrl | quote }}
TEXTPULSE_DB_POOL_MIN_SIZE: {{ .Values.database.poolMinSize | quote }}
TEXTPULSE_DB_POOL_MAX_SIZE: {{ .Values.database.poolMaxSize | quote }}
TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS: {{ .Values.kafka.bootstrapServers | quote }}
TEXTPULSE_KAFKA_REPLICATION_FACTOR: {{ .Values.kafka.replicationFactor | quote }}
TEXTPULSE_KAFKA_SESSION_TIMEOUT_MS: {{ .Values.kafka.sessionTimeoutMs | quote }}
TEXTPULSE_TOPIC_PREFIX: {{ .Values.kafka.topicPrefix | quote }}
TEXTPULSE_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- if include "textpulse.saslEnabled" . }}
TEXTPULSE_KAFKA_SASL_MECHANISM: {{ .Values.kafka.sasl.mechanism | quote }}
{{- with .Values.kafka.sasl.username }}
TEXTPULSE_KAFKA_SASL_USERNAME: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.kafka.tls.caSecret.name }}
TEXTPULSE_KAFKA_SSL_CAFILE: /etc/textpulse/kafka-ca/ca.crt
{{- end }}
{{- if .Values.kafka.tls.clientSecret.name }}
TEXTPULSE_KAFKA_SSL_CERTFILE: /etc/textpulse/kafka-client/client.crt
TEXTPULSE_KAFKA_SSL_KEYFILE: /etc/textpulse/kafka-client/client.key
{{- end }}
TEXTPULSE_TWILIO_API_BASE_URL: {{ .Values.twilio.apiBaseUrl | quote }}
TEXTPULSE_TWILIO_MESSAGING_BASE_URL: {{ .Values.twilio.messagingBaseUrl | quote }}
TEXTPULSE_TWILIO_TIMEOUT_S: {{ .Values.twilio.timeoutSeconds | quote }}
TEXTPULSE_IMIS_BASE_URL: {{ .Values.imis.baseUrl | quote }}
TEXTPULSE_SMTP_HOST: {{ .Values.smtp.host | quote }}
TEXTPULSE_SMTP_PORT: {{ .Values.smtp.port | quote }}
TEXTPULSE_SMTP_STARTTLS: {{ .Values.smtp.starttls | quote }}
TEXTPULSE_SMTP_FROM: {{ .Values.smtp.from | quote }}
{{- with .Values.smtp.username }}
TEXTPULSE_SMTP_USERNAME: {{ . | quote }}
{{- end }}
{{- range $key, $value := .Values.extraConfig }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
