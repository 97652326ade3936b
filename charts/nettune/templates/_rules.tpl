{{/*
NetTune's alert rules, as a list of Prometheus rule groups. The PrometheusRule object carries them; the chart's
tests lift them out and run `promtool check rules` and `promtool test rules` on them.
Two operator replicas export the same gauges; only the leader's are current, so the operator's series are joined
with nettune_operator_leader == 1.
*/}}
{{- define "nettune.rules.groups" -}}
{{- $t := .Values.prometheusRule.thresholds -}}
{{- $extra := .Values.prometheusRule.additionalAlertLabels -}}
- name: nettune.rules
  rules:
    - alert: NetTuneNodeTuningDegraded
      expr: |
        max by (tuning) (
          nettune_operator_nodes{phase="failed"}
            * on (instance) group_left () (nettune_operator_leader == 1)
        ) > 0
      for: {{ $t.degradedFor }}
      labels:
        severity: warning
        {{- with $extra }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: NetworkTuning {{`{{ $labels.tuning }}`}} has nodes that failed to apply it.
        description: >-
          {{`{{ $value }}`}} node(s) selected by NetworkTuning {{`{{ $labels.tuning }}`}} report a failed apply
          for more than {{ $t.degradedFor }}. See `kubectl get networktuningnodestates` and the nodes' Degraded condition.
    - alert: NetTuneDriftRepairsRising
      expr: |
        sum without (knob) (increase(nettune_agent_drift_repaired_total[1h])) > {{ $t.driftRepairsPerHour }}
      for: 15m
      labels:
        severity: warning
        {{- with $extra }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Something keeps undoing NetTune's settings on {{`{{ with $labels.node }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }}`}}.
        description: >-
          The agent set drifted knobs back {{`{{ $value | printf "%.0f" }}`}} times in the last hour (threshold
          {{ $t.driftRepairsPerHour }}). Another tool (irqbalance, tuned, a sysctl job) is probably fighting it.
    - alert: NetTuneRolloutStuck
      expr: |
        (
          max by (tuning) (
            nettune_operator_rollout_progress_ratio
              * on (instance) group_left () (nettune_operator_leader == 1)
          ) < 1
        )
        and on (tuning)
        (
          max by (tuning) (changes(nettune_operator_rollout_progress_ratio[{{ $t.rolloutStuckFor }}])) == 0
        )
      for: 5m
      labels:
        severity: warning
        {{- with $extra }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: The rollout of NetworkTuning {{`{{ $labels.tuning }}`}} is stuck.
        description: >-
          The rollout is at {{`{{ $value | humanizePercentage }}`}} and has not moved for {{ $t.rolloutStuckFor }}.
          A paused rollout (pauseOnFailure) or agents that never report are the usual causes.
    - alert: NetTuneDataPlaneErrorRatioHigh
      expr: |
        (
          sum without (status) (rate(nettune_dataplane_requests_total{status=~"5.."}[5m]))
            /
          sum without (status) (rate(nettune_dataplane_requests_total[5m]))
        ) > {{ $t.dataPlaneErrorRatio }}
        and
        sum without (status) (rate(nettune_dataplane_requests_total[5m])) >= {{ $t.dataPlaneMinRequestRate }}
      for: 5m
      labels:
        severity: critical
        {{- with $extra }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: The data plane on {{`{{ with $labels.node }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }}`}} answers with server errors.
        description: >-
          {{`{{ $value | humanizePercentage }}`}} of the responses in the last 5 minutes were 5xx
          (threshold {{ $t.dataPlaneErrorRatio }}).
    - alert: NetTuneDataPlaneLatencyHigh
      expr: |
        histogram_quantile(0.99,
          sum without (worker) (rate(nettune_dataplane_request_duration_seconds_bucket[5m]))
        ) > {{ $t.dataPlaneP99Seconds }}
      for: 10m
      labels:
        severity: warning
        {{- with $extra }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        summary: Data-plane p99 latency on {{`{{ with $labels.node }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }}`}} is high.
        description: >-
          The 99th percentile of request duration is {{`{{ $value | humanizeDuration }}`}} (threshold {{ $t.dataPlaneP99Seconds }}s).
{{- end -}}
