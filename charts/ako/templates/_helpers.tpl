{{/* Labels on every object of the release. */}}
{{- define "ako.labels" -}}
app.kubernetes.io/name: ako
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ako.selectorLabels" -}}
app.kubernetes.io/name: ako
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* "true"/"false" from a boolean or AKO's quoted boolean. */}}
{{- define "ako.bool" -}}
{{- . | toString | lower -}}
{{- end -}}

{{/* AKO's log level names; WARNING (accepted by AKO's users) is WARN. */}}
{{- define "ako.logLevel" -}}
{{- $l := .Values.AKOSettings.logLevel | toString | upper -}}
{{- if eq $l "WARNING" }}WARN{{ else }}{{ $l }}{{ end -}}
{{- end -}}

{{/*
The VIP network list as JSON: NetworkSettings.vipNetworkList, or the old keys subnetIP/subnetPrefix/networkName
(AKO 1.4 and older) read as one entry. Setting both, or half of the old keys, fails the install naming the keys.
*/}}
{{- define "ako.vipNetworkList" -}}
{{- $n := .Values.NetworkSettings -}}
{{- $ip := $n.subnetIP | default "" | toString -}}
{{- $prefix := $n.subnetPrefix | default "" | toString -}}
{{- $name := $n.networkName | default "" | toString -}}
{{- $old := or $ip $prefix $name -}}
{{- if and $old $n.vipNetworkList -}}
{{- fail "NetworkSettings: set either vipNetworkList or the old subnetIP/subnetPrefix/networkName, not both" -}}
{{- end -}}
{{- if $old -}}
{{- if not $name -}}
{{- fail "NetworkSettings.networkName is required with subnetIP/subnetPrefix (the VIP network's name); or use vipNetworkList" -}}
{{- end -}}
{{- if and $ip (not $prefix) -}}
{{- fail "NetworkSettings.subnetPrefix is required with subnetIP (a prefix length 0 to 32, e.g. 26)" -}}
{{- end -}}
{{- if and $prefix (not $ip) -}}
{{- fail "NetworkSettings.subnetIP is required with subnetPrefix (the subnet's address, e.g. 10.10.18.0)" -}}
{{- end -}}
{{- $entry := dict "networkName" $name -}}
{{- if $ip -}}{{- $_ := set $entry "cidr" (printf "%s/%s" $ip $prefix) -}}{{- end -}}
{{- list $entry | toJson -}}
{{- else -}}
{{- $n.vipNetworkList | default list | toJson -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the webhook's CA and serving certificate. */}}
{{- define "ako.webhookSecret" -}}ako-webhook-tls{{- end -}}

{{/* The webhook's Service (and the name of both webhook configurations). */}}
{{- define "ako.webhookName" -}}ako-webhook{{- end -}}

{{/* The host part of webhook.url ("" without one). */}}
{{- define "ako.webhookUrlHost" -}}
{{- if .Values.webhook.url -}}
{{- $u := urlParse .Values.webhook.url -}}
{{- $h := $u.host -}}
{{- if hasPrefix "[" $h -}}
{{- $h = regexReplaceAll "^\\[([^\\]]*)\\].*$" $h "${1}" -}}
{{- else -}}
{{- $h = regexReplaceAll ":[0-9]+$" $h "" -}}
{{- end -}}
{{- $h -}}
{{- end -}}
{{- end -}}

{{/* The webhook's deadline in ms: timeoutSeconds minus a second for the network (at least 500). */}}
{{- define "ako.webhookDeadlineMs" -}}
{{- max 500 (sub (mul (int .Values.webhook.timeoutSeconds) 1000) 1000) -}}
{{- end -}}

{{/* Checks across values that the schema cannot express. */}}
{{- define "ako.validate" -}}
{{- $sel := .Values.nodePortSelector -}}
{{- if ne (empty $sel.key) (empty $sel.value) -}}
{{- fail "nodePortSelector: key and value must be given together" -}}
{{- end -}}
{{- $ns := .Values.AKOSettings.namespaceSelector -}}
{{- if ne (empty $ns.labelKey) (empty $ns.labelValue) -}}
{{- fail "AKOSettings.namespaceSelector: labelKey and labelValue must be given together" -}}
{{- end -}}
{{- $c := .Values.avicredentials -}}
{{- if and $c.password $c.authtoken -}}
{{- fail "avicredentials: give password or authtoken, not both" -}}
{{- end -}}
{{- if and (or $c.password $c.authtoken) (not $c.username) -}}
{{- fail "avicredentials.username is required with a password or authtoken" -}}
{{- end -}}
{{- end -}}
