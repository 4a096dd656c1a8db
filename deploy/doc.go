// Package deploy holds no code: it is the deployment of leadthrough — Prometheus rules and configuration
// (deploy/prometheus), Grafana provisioning (deploy/grafana), a Dockerfile, a compose stack (deploy/compose) and a
// kustomize base for Kubernetes (deploy/kubernetes, whose PrometheusRule package kubernetes generates from the
// rules). Its tests check those files with the real tools (promtool, kustomize's Go API, and docker compose where
// installed), so a broken rule, a failing rule unit test, an invalid configuration or a manifest that does not fit
// the binary fails `go test ./...`.
package deploy
