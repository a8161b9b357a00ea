#!/usr/bin/env bash
# Usage: scripts/bench-agent.sh [SECONDS] [SERIES]
#
# Runs dynoscope and Prometheus in agent mode side by side, both scraping the
# same demo app (SERIES extra series, default 10000) every 5s and
# remote-writing to the same Debian Prometheus receiver, for SECONDS (default
# 180). Prints each agent's steady RSS (median of the samples taken after the
# first 30s) and CPU time per minute, then dynoscope's idle RSS (the demo app
# alone, its own ~30 series). Everything listens on 127.0.0.1 and is stopped
# at the end. Needs: prometheus (apt-get install -y prometheus), built
# binaries in build/ (make build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly SECONDS_TOTAL="${1:-180}"
readonly SERIES="${2:-10000}"
readonly WARMUP=30
TICK="$(getconf CLK_TCK)"
readonly TICK

command -v prometheus >/dev/null || {
	echo "bench: prometheus not found: apt-get install -y prometheus" >&2
	exit 1
}
[[ -x "${ROOT}/build/dynoscope" && -x "${ROOT}/build/demoapp" ]] || {
	echo "bench: run make build first" >&2
	exit 1
}

WORK="$(mktemp -d)"
readonly WORK
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "${WORK}"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # url
	local i
	for ((i = 0; i < 300; i++)); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

app_port="$(free_port)"
recv_port="$(free_port)"
pagent_port="$(free_port)"

PORT="${app_port}" DEMO_SERIES="${SERIES}" "${ROOT}/build/demoapp" >/dev/null 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:${app_port}/metrics"

cat >"${WORK}/receiver.yml" <<YML
global: {scrape_interval: 1h}
YML
prometheus --config.file="${WORK}/receiver.yml" --storage.tsdb.path="${WORK}/receiver" \
	--web.listen-address="127.0.0.1:${recv_port}" --web.enable-remote-write-receiver \
	--log.level=warn >"${WORK}/receiver.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:${recv_port}/-/ready"

cat >"${WORK}/agent.yml" <<YML
global: {scrape_interval: 5s, scrape_timeout: 5s}
scrape_configs:
  - job_name: app
    static_configs: [{targets: ["127.0.0.1:${app_port}"]}]
remote_write:
  - url: http://127.0.0.1:${recv_port}/api/v1/write
YML
prometheus --enable-feature=agent --config.file="${WORK}/agent.yml" --storage.agent.path="${WORK}/agent" \
	--web.listen-address="127.0.0.1:${pagent_port}" --log.level=warn >"${WORK}/pagent.log" 2>&1 &
pagent=$!
pids+=("${pagent}")

start_dynoscope() { # max_series, then env overrides
	env -i PATH="${PATH}" HOME="${WORK}" GOMEMLIMIT=64MiB \
		GRAFANA_CLOUD_PROMETHEUS_URL="http://127.0.0.1:${recv_port}/api/v1/write" \
		DYNOSCOPE_APP=bench ENVIRONMENT=bench DYNOSCOPE_LOGS=false DYNOSCOPE_STATUS_ADDR= \
		DYNOSCOPE_SOCKET="${WORK}/dynoscope.sock" DYNOSCOPE_SCRAPE_INTERVAL=5s DYNOSCOPE_SCRAPE_TIMEOUT=5s \
		DYNOSCOPE_SCRAPE_TARGETS="http://127.0.0.1:${app_port}/metrics" DYNOSCOPE_MAX_SERIES="$1" \
		"${ROOT}/build/dynoscope" agent >"${WORK}/dynoscope.log" 2>&1 &
	dyn=$!
	pids+=("${dyn}")
}
start_dynoscope 20000

measure() { # pid name -> prints "name median_rss_mib cpu_s_per_min"
	local pid="$1" name="$2" t cpu0 cpu1 rss
	: >"${WORK}/${name}.rss"
	sleep "${WARMUP}"
	cpu0="$(cpu_ticks "${pid}")"
	for ((t = WARMUP; t < SECONDS_TOTAL; t += 5)); do
		rss_kib "${pid}" >>"${WORK}/${name}.rss"
		sleep 5
	done
	cpu1="$(cpu_ticks "${pid}")"
	rss="$(median <"${WORK}/${name}.rss")"
	awk -v n="${name}" -v r="${rss}" -v c=$((cpu1 - cpu0)) -v hz="${TICK}" -v s=$((SECONDS_TOTAL - WARMUP)) \
		'BEGIN {printf "%-18s steady RSS %6.1f MiB   CPU %6.2f s/min\n", n, r/1024, c/hz*60/s}'
}

echo "bench: ${SERIES} series every 5s, ${SECONDS_TOTAL}s (first ${WARMUP}s not measured)"
measure "${pagent}" prometheus-agent >"${WORK}/pagent.result" &
m1=$!
measure "${dyn}" dynoscope >"${WORK}/dyn.result" &
m2=$!
wait "${m1}" "${m2}"
cat "${WORK}/pagent.result" "${WORK}/dyn.result"

kill "${dyn}" "${pagent}"
curl -fsS "http://127.0.0.1:${recv_port}/api/v1/query" --data-urlencode \
	'query=count by (app) (demo_load_series)' -o "${WORK}/count.json"
arrived="$(jq -r '.data.result[] | select(.metric.app=="bench") | .value[1]' "${WORK}/count.json")"
echo "bench: demo_load_series from dynoscope at the receiver: ${arrived} series"

# Idle: the demo app's own handful of series.
idle_port="$(free_port)"
PORT="${idle_port}" "${ROOT}/build/demoapp" >/dev/null 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:${idle_port}/metrics"
app_port="${idle_port}"
start_dynoscope 2000
sleep "${WARMUP}"
idle_kib="$(rss_kib "${dyn}")"
awk -v r="${idle_kib}" 'BEGIN {printf "dynoscope idle     RSS %6.1f MiB\n", r/1024}'
