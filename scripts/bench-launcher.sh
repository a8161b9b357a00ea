#!/usr/bin/env bash
# Usage: scripts/bench-launcher.sh [RUNS]   (default 50)
# Measures what the .profile.d launcher adds to dyno boot: the time to source it in the dyno's
# bash (web.1, both forwarders set, so it starts the agent and both tees), over RUNS fresh
# "dynos", and prints the median, p90 and max in milliseconds. The agent is built from this
# checkout (or taken from DYNOSCOPE_BIN); each run's processes are stopped before the next.
set -euo pipefail

BUILDPACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILDPACK_DIR

main() {
	local runs="${1:-50}" work app agent i tmp ms pgid
	work="$(mktemp -d "${TMPDIR:-/tmp}/dynoscope-bench.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: work is local
	trap "rm -rf '${work}'" EXIT
	app="${work}/app"
	mkdir -p "${app}/.dynoscope/bin" "${app}/.profile.d"
	agent="${DYNOSCOPE_BIN:-}"
	if [[ -z "${agent}" ]]; then
		agent="${work}/dynoscope"
		(cd "${BUILDPACK_DIR}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${agent}" ./agent/cmd/dynoscope)
	fi
	cp "${agent}" "${app}/.dynoscope/bin/dynoscope"
	cp "${BUILDPACK_DIR}/lib/launcher.sh" "${app}/.profile.d/zz-dynoscope.sh"

	local -a times=()
	for ((i = 0; i < runs; i++)); do
		tmp="${work}/tmp.${i}"
		mkdir -p "${tmp}"
		# One dyno in its own process group: source the launcher, record the time it took (in a file:
		# the agent it starts inherits any pipe); then SIGTERM to the group, as the platform does.
		# shellcheck disable=SC2016 # the script is for the inner bash
		setsid env -i HOME="${app}" PATH="/usr/local/bin:/usr/bin:/bin" TMPDIR="${tmp}" DYNO=web.1 PORT=5999 \
			GRAFANA_CLOUD_PROMETHEUS_URL=http://127.0.0.1:9/api/prom/push GRAFANA_CLOUD_LOKI_URL=http://127.0.0.1:9/loki/api/v1/push \
			DYNOSCOPE_DRY_RUN=true DYNOSCOPE_STATUS_ADDR= DYNOSCOPE_SOCKET="${tmp}/dynoscope.sock" \
			bash -c 'start="${EPOCHREALTIME}"; . "${HOME}/.profile.d/zz-dynoscope.sh"; end="${EPOCHREALTIME}"
				echo "$((${end/./} - ${start/./})) $$" >"${TMPDIR}/us"' >/dev/null 2>&1 </dev/null
		read -r ms pgid <"${tmp}/us"
		kill -TERM -- "-${pgid}" 2>/dev/null || :
		times+=("${ms}")
	done
	printf '%s\n' "${times[@]}" | sort -n | awk -v runs="${runs}" '
		{ v[NR] = $1 }
		END {
			printf "launcher source time over %d runs: median %.2f ms, p90 %.2f ms, max %.2f ms\n",
				runs, v[int((NR + 1) / 2)] / 1000, v[int(NR * 0.9 + 0.5)] / 1000, v[NR] / 1000
		}'
}

main "$@"
