// Package deploy holds no code: it is the deployment of leadthrough — Prometheus rules and configuration
// (deploy/prometheus), Grafana provisioning (deploy/grafana), a Dockerfile and a compose stack (deploy/compose). Its
// tests check those files with the real tools (promtool, and docker compose where installed), so a broken rule,
// a failing rule unit test or an invalid configuration fails `go test ./...`.
package deploy
