#!/usr/bin/env bash
# Usage: scripts/local-native.sh [up]
#        scripts/local-native.sh render DIR
#
# The local stack without Docker (make local-native). `up` builds dynoscope,
# the demo app and alertlog into build/native/, then starts, on free
# 127.0.0.1 ports: Prometheus (remote-write receiver, the rules of alerts/)
# and Alertmanager from the PATH, alertlog (the local webhook receiver), Loki
# and Grafana when `loki` and `grafana-server` are on the PATH, and the demo
# app under `dynoscope run` twice, as staging and as production, so the
# dashboards' cross-environment panels have data. Ctrl-C stops everything.
#
# `render DIR` only writes the native configurations into DIR: the compose
# stack's files from local/ with the addresses replaced and nothing else
# (local/local_test.go checks that, and the tests start from them). Addresses
# come from PROMETHEUS_ADDR, ALERTMANAGER_ADDR, ALERTLOG_ADDR and LOKI_ADDR
# (host:port), defaulting to 127.0.0.1:9090, :9093, :8080 and :3100.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# render DIR: the native configurations, from local/ with addresses replaced.
native::render() {
	local dir="${1}"
	local prometheus="${PROMETHEUS_ADDR:-127.0.0.1:9090}"
	local alertmanager="${ALERTMANAGER_ADDR:-127.0.0.1:9093}"
	local alertlog="${ALERTLOG_ADDR:-127.0.0.1:8080}"
	local loki="${LOKI_ADDR:-127.0.0.1:3100}"
	mkdir -p "${dir}/local/grafana/provisioning/datasources" "${dir}/local/grafana/provisioning/dashboards"
	# prometheus.yml loads ../alerts/*.rules.yml relative to itself, as in compose.
	ln -sfn "${REPO_DIR}/alerts" "${dir}/alerts"
	sed -e "s|alertmanager:9093|${alertmanager}|g" \
		"${REPO_DIR}/local/prometheus.yml" >"${dir}/local/prometheus.yml"
	sed -e "s|http://alert-log:8080|http://${alertlog}|g" \
		"${REPO_DIR}/local/alertmanager.yml" >"${dir}/local/alertmanager.yml"
	sed -e "s|: /loki|: ${dir}/loki|g" -e "s|http_listen_port: 3100|http_listen_port: ${loki##*:}|" \
		-e "s|grpc_listen_port: 9096|grpc_listen_port: 0|" \
		"${REPO_DIR}/local/loki.yml" >"${dir}/local/loki.yml"
	sed -e "s|http://prometheus:9090|http://${prometheus}|g" -e "s|http://loki:3100|http://${loki}|g" \
		-e "s|http://alertmanager:9093|http://${alertmanager}|g" \
		"${REPO_DIR}/local/grafana/provisioning/datasources/dynoscope.yml" \
		>"${dir}/local/grafana/provisioning/datasources/dynoscope.yml"
	sed -e "s|/var/lib/grafana/dashboards|${dir}/dashboards|g" \
		"${REPO_DIR}/local/grafana/provisioning/dashboards/dynoscope.yml" \
		>"${dir}/local/grafana/provisioning/dashboards/dynoscope.yml"
	mkdir -p "${dir}/dashboards"
	cp "${REPO_DIR}"/dashboards/*.json "${dir}/dashboards/"
}

# free_port prints a TCP port free on 127.0.0.1 a moment ago.
native::free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

native::need() {
	local cmd="${1}" hint="${2}"
	if ! command -v "${cmd}" >/dev/null; then
		echo "local-native: ${cmd} not found: ${hint}" >&2
		exit 1
	fi
}

# kill_groups PID...: SIGTERM to each process group, then wait for them.
native::kill_groups() {
	local pid
	for pid in "$@"; do
		kill -TERM -- "-${pid}" 2>/dev/null || true
	done
	if (($# > 0)); then
		wait "$@" 2>/dev/null || true
	fi
}

# wait_ready NAME URL: poll URL for up to 30 seconds.
native::wait_ready() {
	local name="${1}" url="${2}" i
	for ((i = 0; i < 300; i++)); do
		if curl -fsS -o /dev/null "${url}" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "local-native: ${name} not ready at ${url} after 30s" >&2
	return 1
}

native::up() {
	native::need prometheus "apt-get install prometheus"
	native::need prometheus-alertmanager "apt-get install prometheus-alertmanager"
	native::need curl "apt-get install curl"
	native::need python3 "apt-get install python3"
	native::need setsid "apt-get install util-linux"
	native::need go "install Go (see go.mod)"

	local bin="${REPO_DIR}/build/native" dir
	dir="$(mktemp -d "${TMPDIR:-/tmp}/dynoscope-native.XXXXXX")"
	mkdir -p "${bin}" "${dir}/logs"
	echo "building into ${bin}"
	(cd "${REPO_DIR}" && for pkg in agent/cmd/dynoscope local/demoapp local/alertlog; do
		CGO_ENABLED=0 go build -o "${bin}/$(basename "${pkg}")" "./${pkg}"
	done)

	export PROMETHEUS_ADDR ALERTMANAGER_ADDR ALERTLOG_ADDR LOKI_ADDR
	PROMETHEUS_ADDR="127.0.0.1:$(native::free_port)"
	ALERTMANAGER_ADDR="127.0.0.1:$(native::free_port)"
	ALERTLOG_ADDR="127.0.0.1:$(native::free_port)"
	LOKI_ADDR="127.0.0.1:$(native::free_port)"
	native::render "${dir}"

	# Every process runs in its own process group (setsid), so Ctrl-C reaches
	# only this script, which stops the apps first (SIGTERM to the app and its
	# agent, as on a dyno) so their agents flush to a Prometheus still running,
	# then the rest.
	local apps=() others=()
	# shellcheck disable=SC2317 # called by the trap
	native::stop() {
		echo "stopping"
		native::kill_groups "${apps[@]}"
		native::kill_groups "${others[@]}"
		echo "configs, data and logs kept in ${dir}"
	}
	trap native::stop EXIT
	trap 'exit 130' INT TERM

	PORT="${ALERTLOG_ADDR##*:}" setsid "${bin}/alertlog" >"${dir}/logs/alertlog.log" 2>&1 &
	others+=("$!")
	setsid prometheus-alertmanager --config.file="${dir}/local/alertmanager.yml" --storage.path="${dir}/alertmanager" \
		--web.listen-address="${ALERTMANAGER_ADDR}" --cluster.listen-address= >"${dir}/logs/alertmanager.log" 2>&1 &
	others+=("$!")
	native::wait_ready alertmanager "http://${ALERTMANAGER_ADDR}/-/ready"
	setsid prometheus --config.file="${dir}/local/prometheus.yml" --storage.tsdb.path="${dir}/prometheus" \
		--web.listen-address="${PROMETHEUS_ADDR}" --web.enable-remote-write-receiver \
		>"${dir}/logs/prometheus.log" 2>&1 &
	others+=("$!")
	native::wait_ready prometheus "http://${PROMETHEUS_ADDR}/-/ready"

	local loki_url=""
	if command -v loki >/dev/null; then
		setsid loki -config.file="${dir}/local/loki.yml" >"${dir}/logs/loki.log" 2>&1 &
		others+=("$!")
		native::wait_ready loki "http://${LOKI_ADDR}/ready"
		loki_url="http://${LOKI_ADDR}/loki/api/v1/push"
	else
		echo "loki not on the PATH: logs are not shipped (the agent warns and keeps the app's output)"
	fi

	local grafana_port=""
	if command -v grafana-server >/dev/null; then
		grafana_port="$(native::free_port)"
		GF_PATHS_PROVISIONING="${dir}/local/grafana/provisioning" GF_PATHS_DATA="${dir}/grafana" \
			GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="${grafana_port}" \
			GF_AUTH_ANONYMOUS_ENABLED=true GF_AUTH_ANONYMOUS_ORG_ROLE=Admin GF_AUTH_DISABLE_LOGIN_FORM=true \
			setsid grafana-server --homepath="${GRAFANA_HOME:-/usr/share/grafana}" >"${dir}/logs/grafana.log" 2>&1 &
		others+=("$!")
	else
		echo "grafana-server not on the PATH: no Grafana (the dashboards import into Grafana Cloud, see README)"
	fi

	local environment port status
	for environment in staging production; do
		port="$(native::free_port)"
		status="$(native::free_port)"
		env PORT="${port}" ENVIRONMENT="${environment}" DYNOSCOPE_APP=demo DEMO_TRAFFIC=true \
			GRAFANA_CLOUD_PROMETHEUS_URL="http://${PROMETHEUS_ADDR}/api/v1/write" \
			GRAFANA_CLOUD_LOKI_URL="${loki_url}" \
			DYNOSCOPE_SCRAPE_INTERVAL=5s DYNOSCOPE_SCRAPE_TIMEOUT=5s DYNOSCOPE_SHUTDOWN_TIMEOUT=5s DYNOSCOPE_STATUS_ADDR="127.0.0.1:${status}" \
			DYNOSCOPE_SOCKET="${dir}/dynoscope-${environment}.sock" \
			setsid "${bin}/dynoscope" run -- "${bin}/demoapp" >"${dir}/logs/app-${environment}.log" 2>&1 &
		apps+=("$!")
		echo "demo app (${environment}):  http://127.0.0.1:${port}   agent status: http://127.0.0.1:${status}/status"
	done

	echo "Prometheus:         http://${PROMETHEUS_ADDR}"
	echo "Alertmanager:       http://${ALERTMANAGER_ADDR}"
	if [[ -n "${grafana_port}" ]]; then
		echo "Grafana:            http://127.0.0.1:${grafana_port}"
	fi
	echo "notifications:      tail -f ${dir}/logs/alertlog.log"
	echo "logs of every process in ${dir}/logs; Ctrl-C stops"
	wait -n "${apps[@]}" "${others[@]}" || true
	echo "a process exited; see ${dir}/logs" >&2
}

case "${1:-up}" in
up) native::up ;;
render)
	if [[ $# -ne 2 ]]; then
		echo "usage: ${0} render DIR" >&2
		exit 2
	fi
	native::render "${2}"
	;;
*)
	echo "usage: ${0} [up] | render DIR" >&2
	exit 2
	;;
esac
