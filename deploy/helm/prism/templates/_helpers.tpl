{{/* Chart name. */}}
{{- define "prism.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name (release-based, at most 63 characters). */}}
{{- define "prism.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "prism.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "prism.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prism.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "prism.labels" -}}
helm.sh/chart: {{ include "prism.chart" . }}
{{ include "prism.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The Secret whose keys become environment variables. */}}
{{- define "prism.secretName" -}}
{{- default (include "prism.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{/*
The prism.toml the pods run with: config.toml, or files/prism.toml; with redis.enabled and no
[cache] section of its own, files/cache-redis.toml is appended (a new top-level table, valid
after any other table).
*/}}
{{- define "prism.config" -}}
{{- $cfg := .Values.config.toml | default (.Files.Get "files/prism.toml") -}}
{{- $cfg = printf "%s\n" (trimSuffix "\n" $cfg) -}}
{{- if and .Values.redis.enabled (not (regexMatch "(?m)^[ \\t]*\\[cache\\]" $cfg)) -}}
{{- $cfg = printf "%s\n%s" $cfg (.Files.Get "files/cache-redis.toml") -}}
{{- end -}}
{{- $cfg -}}
{{- end -}}

{{/*
timeouts.shutdown_grace_ms of the configuration (the key of `RawTimeouts` in
crates/prism-server/src/config/raw.rs), or Prism's default of 30000 when the file does not set it.
*/}}
{{- define "prism.shutdownGraceMs" -}}
{{- $cfg := include "prism.config" . -}}
{{- $line := regexFind "(?m)^[ \\t]*(timeouts\\.)?shutdown_grace_ms[ \\t]*=[ \\t]*[0-9_]+" $cfg -}}
{{- if $line -}}
{{- regexReplaceAll "[^0-9]" (regexReplaceAll "^[^=]*=" $line "") "" -}}
{{- else -}}
30000
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the preStop sleep, then SIGTERM and up to shutdown_grace_ms
(rounded up to whole seconds) of draining, plus a margin. Kubernetes counts the grace period from
the start of the preStop hook, so anything shorter SIGKILLs pods with streams still open.
*/}}
{{- define "prism.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.shutdown.terminationGracePeriodSeconds -}}
{{- $graceMs := include "prism.shutdownGraceMs" . | atoi -}}
{{- $graceS := div (add $graceMs 999) 1000 -}}
{{- add (int .Values.shutdown.preStopSeconds) $graceS (int .Values.shutdown.marginSeconds) -}}
{{- else -}}
{{- int .Values.shutdown.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
Checks the configuration's `listen`: it must be set (the default is 127.0.0.1:8080, loopback,
unreachable from the Service), not loopback, and on .Values.containerPort.
*/}}
{{- define "prism.checkListen" -}}
{{- $cfg := include "prism.config" . -}}
{{- $line := regexFind "(?m)^[ \\t]*listen[ \\t]*=[ \\t]*\"[^\"]*\"" $cfg -}}
{{- if not $line -}}
{{- fail "the Prism configuration sets no `listen`: it would listen on 127.0.0.1:8080, unreachable from the Service; set listen = \"0.0.0.0:<containerPort>\"" -}}
{{- end -}}
{{- $addr := regexReplaceAll "^[^\"]*\"([^\"]*)\"$" $line "${1}" -}}
{{- if regexMatch "127\\.0\\.0\\.1|localhost|\\[::1\\]" $addr -}}
{{- fail (printf "the Prism configuration listens on %s, a loopback address unreachable from the Service; use 0.0.0.0:%v" $addr .Values.containerPort) -}}
{{- end -}}
{{- $port := regexFind "[0-9]+$" (regexReplaceAll "\\}+$" $addr "") -}}
{{- if ne $port (toString .Values.containerPort) -}}
{{- fail (printf "the Prism configuration listens on %s but containerPort is %v; make them the same port" $addr .Values.containerPort) -}}
{{- end -}}
{{- end -}}

{{/* The bundled Redis chart's fullname (bitnami common.names.fullname). */}}
{{- define "prism.redisFullname" -}}
{{- if .Values.redis.fullnameOverride -}}
{{- .Values.redis.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default "redis" .Values.redis.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "prism.redisHost" -}}
{{- default (printf "%s-master" (include "prism.redisFullname" .)) .Values.cache.redisHost -}}
{{- end -}}

{{- define "prism.redisPasswordSecretName" -}}
{{- .Values.cache.passwordSecret.name | default .Values.redis.auth.existingSecret | default (include "prism.redisFullname" .) -}}
{{- end -}}

{{- define "prism.redisPasswordSecretKey" -}}
{{- .Values.redis.auth.existingSecretPasswordKey | default .Values.cache.passwordSecret.key | default "redis-password" -}}
{{- end -}}
