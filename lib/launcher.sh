# shellcheck shell=bash
# dynoscope launcher. bin/compile installs it as .profile.d/zz-dynoscope.sh; Heroku sources it in the
# bash that then runs the dyno's command (web, worker, release, one-off). Usage: source this file.
#
# Because it is sourced into that shell it changes no shell option, leaks no variable or function
# (only PATH gains ~/.dynoscope/bin), returns within milliseconds (nothing runs in the foreground), and
# never fails: every path ends in "return 0". It
#   - does nothing when DYNOSCOPE_DISABLED=true or ENABLE_METRICS=false, on one-off dynos (run.*)
#     unless DYNOSCOPE_ONE_OFF=true, when stdin is a terminal, or when the agent already runs in
#     this dyno (heroku ps:exec sources .profile.d again, without the config vars);
#   - warns once and does nothing when neither GRAFANA_CLOUD_PROMETHEUS_URL nor GRAFANA_CLOUD_LOKI_URL
#     is set (unless DYNOSCOPE_DRY_RUN=true);
#   - starts `dynoscope agent` in the background under a restart loop (1 s delay, doubling to 60 s),
#     with GOMEMLIMIT=DYNOSCOPE_MEMORY_LIMIT (64MiB), before any redirection, so the agent's own
#     output reaches the dyno's stderr directly; the loop stops restarting on SIGTERM;
#   - unless DYNOSCOPE_LOGS=false (or no Loki URL), sends the shell's stdout and stderr through
#     `dynoscope tee`, which passes every byte on unchanged and offers the lines to the agent;
#   - on short-lived dynos (release.*, scheduler.*, run.*), keeps the agent off the dyno's output
#     (its log goes to $TMPDIR/dynoscope-agent.log) and stops it when the shell exits, so the
#     release or job ends as soon as its command does.
# Function names are plain (_dynoscope_*), not topic::verb: "::" is invalid in a shell in POSIX mode.

# _dynoscope_supervise BIN MEMORY_LIMIT runs `BIN agent` until SIGTERM, restarting it when it exits.
_dynoscope_supervise() {
	local bin="${1}" limit="${2}" delay=1 pid started status
	local stopping=0
	trap 'stopping=1' TERM
	trap '' HUP
	while ((stopping == 0)); do
		started="${SECONDS}"
		GOMEMLIMIT="${limit}" "${bin}" agent </dev/null &
		pid="$!"
		status=0
		wait "${pid}" || status="$?"
		# wait returns early when SIGTERM arrives: pass it on (the agent then flushes and exits; a
		# repeated SIGTERM does not abort that) and wait for the agent to end. It is sent again every
		# 2 s, as one that arrives between fork and exec is taken by this loop's trap, not the agent.
		if ((stopping)); then
			local polls=0
			while kill -0 "${pid}" 2>/dev/null; do
				if ((polls % 10 == 0)); then
					kill -TERM "${pid}" 2>/dev/null || :
				fi
				polls=$((polls + 1))
				sleep 0.2 &
				wait "$!" || :
			done
			wait "${pid}" 2>/dev/null || :
			break
		fi
		if ((SECONDS - started >= 60)); then
			delay=1
		fi
		echo "dynoscope: the agent exited (status ${status}); restarting it in ${delay}s" >&2
		sleep "${delay}" &
		wait "$!" || kill "$!" 2>/dev/null || :
		delay=$((delay * 2 > 60 ? 60 : delay * 2))
	done
	return 0
}

# _dynoscope_launch decides whether to start the agent in this dyno, and starts it.
_dynoscope_launch() {
	local bin="${HOME:-/app}/.dynoscope/bin/dynoscope"
	local marker="${TMPDIR:-/tmp}/dynoscope-launcher.pid"
	local limit="${DYNOSCOPE_MEMORY_LIMIT:-64MiB}" pid="" kind="${DYNO:-}" short_lived=0

	kind="${kind%%.*}"
	[[ -x "${bin}" ]] || return 0
	case ":${PATH}:" in
	*":${bin%/*}:"*) ;;
	*) PATH="${PATH:+${PATH}:}${bin%/*}" ;;
	esac

	[[ "${DYNOSCOPE_DISABLED:-false}" == [Tt][Rr][Uu][Ee] ]] && return 0
	[[ "${ENABLE_METRICS:-true}" == [Ff][Aa][Ll][Ss][Ee] ]] && return 0
	case "${kind}" in
	run)
		[[ "${DYNOSCOPE_ONE_OFF:-false}" == [Tt][Rr][Uu][Ee] ]] || return 0
		short_lived=1
		;;
	release | scheduler) short_lived=1 ;;
	*) ;;
	esac
	[[ -t 0 ]] && return 0
	if [[ -r "${marker}" ]]; then
		read -r pid <"${marker}" || :
		[[ "${pid}" =~ ^[0-9]+$ ]] && kill -0 "${pid}" 2>/dev/null && return 0
	fi
	if [[ -z "${GRAFANA_CLOUD_PROMETHEUS_URL:-}${GRAFANA_CLOUD_LOKI_URL:-}" &&
		"${DYNOSCOPE_DRY_RUN:-false}" != [Tt][Rr][Uu][Ee] ]]; then
		echo "dynoscope: warning: neither GRAFANA_CLOUD_PROMETHEUS_URL nor GRAFANA_CLOUD_LOKI_URL is set, so the agent is not started (set them with heroku config:set, or DYNOSCOPE_DISABLED=true to silence this)" >&2
		return 0
	fi
	if [[ ! "${limit}" =~ ^[0-9]+(B|KiB|MiB|GiB|TiB)?$ ]]; then
		echo "dynoscope: warning: DYNOSCOPE_MEMORY_LIMIT=${limit} is not a size like 64MiB; using 64MiB" >&2
		limit="64MiB"
	fi

	if ((short_lived)); then
		_dynoscope_supervise "${bin}" "${limit}" </dev/null >>"${TMPDIR:-/tmp}/dynoscope-agent.log" 2>&1 &
		pid="$!"
		# Stop the agent when the command ends, so nothing keeps the release or job running.
		# shellcheck disable=SC2064 # expand the pid now: it is not a variable of the user's shell
		trap "kill -TERM ${pid} 2>/dev/null || :" EXIT
	else
		_dynoscope_supervise "${bin}" "${limit}" </dev/null &
		pid="$!"
	fi
	echo "${pid}" 2>/dev/null >"${marker}" || :

	if [[ "${DYNOSCOPE_LOGS:-true}" != [Ff][Aa][Ll][Ss][Ee] ]] &&
		[[ -n "${GRAFANA_CLOUD_LOKI_URL:-}" || "${DYNOSCOPE_DRY_RUN:-false}" == [Tt][Rr][Uu][Ee] ]]; then
		# The stderr tee writes to the original stderr (>&2 is evaluated after stdout moved).
		# The tees' exit status is not ours to check: they end at EOF, after the app.
		# shellcheck disable=SC2312
		exec > >(exec "${bin}" tee --stream stdout) 2> >(exec "${bin}" tee --stream stderr >&2)
	fi
	return 0
}

_dynoscope_launch || :
unset -f _dynoscope_launch _dynoscope_supervise
