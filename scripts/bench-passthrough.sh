#!/usr/bin/env bash
# Usage: scripts/bench-passthrough.sh [MIB]
#
# Passthrough throughput of `dynoscope tee` and `dynoscope run` against a
# plain pipe through cat, on MIB (default 512) MiB of 200-byte lines. The
# agent is up but its Loki is down (connection refused), so the pipeline
# can't keep up: lines it can't take are dropped and counted, and the
# passthrough must not wait for it. Prints the median of 3 runs of each.
# Needs build/dynoscope (make build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly MIB="${1:-512}"
readonly BIN="${ROOT}/build/dynoscope"
[[ -x "${BIN}" ]] || {
	echo "bench: run make build first" >&2
	exit 1
}

WORK="$(mktemp -d)"
readonly WORK
agent=""
cleanup() {
	[[ -z "${agent}" ]] || kill "${agent}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "${WORK}"
}
trap cleanup EXIT

lines=$((MIB * 1024 * 1024 / 200))
awk -v n="${lines}" 'BEGIN { pad = sprintf("%190s", ""); gsub(/ /, "x", pad); for (i = 0; i < n; i++) printf "%09d %s\n", i, pad }' >"${WORK}/in.txt"

agent_env=(env -i "PATH=${PATH}" DYNOSCOPE_APP=bench
	GRAFANA_CLOUD_LOKI_URL=http://127.0.0.1:9/loki/api/v1/push
	DYNOSCOPE_STATUS_ADDR= DYNOSCOPE_SCRAPE_TARGETS=)
"${agent_env[@]}" DYNOSCOPE_SOCKET="${WORK}/agent.sock" "${BIN}" agent 2>"${WORK}/agent.log" &
agent=$!
for ((i = 0; i < 50; i++)); do
	[[ -S "${WORK}/agent.sock" ]] && break
	sleep 0.1
done

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f\n", e - s }'; }
median3() { sort -n | sed -n 2p; }

measure() { # name, then the command reading in.txt
	local name="$1" s e
	shift
	for _ in 1 2 3; do
		rm -f "${WORK}/end"
		s="$(now)"
		"$@"
		e="$(now)"
		[[ ! -s "${WORK}/end" ]] || e="$(cat "${WORK}/end")"
		elapsed "${s}" "${e}"
	done | median3 | awk -v n="${name}" -v mib="${MIB}" '{ printf "%-32s %6.3f s  %7.0f MiB/s\n", n, $1, mib / $1 }'
}

# The producer must be a process writing into a pipe, as an app is.
# shellcheck disable=SC2002
pipe_cat() { cat "${WORK}/in.txt" | cat >/dev/null; }
# shellcheck disable=SC2002
pipe_tee() { cat "${WORK}/in.txt" | DYNOSCOPE_SOCKET="${WORK}/agent.sock" "${BIN}" tee --stream stdout >/dev/null; }
# The child expands its own arguments.
# shellcheck disable=SC2016
run_cat() { # timed until the child has written everything: the flush after it is not passthrough
	"${agent_env[@]}" DYNOSCOPE_SOCKET="${WORK}/run.sock" DYNOSCOPE_SHUTDOWN_TIMEOUT=1s \
		"${BIN}" run -- sh -c 'cat "$1" && date +%s.%N >"$2"' sh "${WORK}/in.txt" "${WORK}/end" \
		>/dev/null 2>"${WORK}/run.log"
}

echo "bench: ${MIB} MiB of 200-byte lines; the agent up, its Loki down"
measure "cat | cat" pipe_cat
measure "cat | dynoscope tee" pipe_tee
measure "dynoscope run -- cat" run_cat
grep -o 'logs="[^"]*"' "${WORK}/run.log" || true
