#!/usr/bin/env bash
# Usage: scripts/deps.sh
#
# Makes sure the programs the tests run are installed: Debian's Prometheus
# (prometheus, promtool), Alertmanager (prometheus-alertmanager, amtool),
# docker-compose (compose validation), shellcheck and shfmt (lint), node and
# npm (LogQL parsing), script (a pty for the launcher tests).
# Installs the missing ones with apt-get when it can (root, or sudo without a
# password); otherwise stops at once with the exact command to run.
set -euo pipefail

# command:package pairs
readonly NEEDS=(
	prometheus:prometheus
	promtool:prometheus
	prometheus-alertmanager:prometheus-alertmanager
	amtool:prometheus-alertmanager
	docker-compose:docker-compose
	shellcheck:shellcheck
	shfmt:shfmt
	node:nodejs
	npm:npm
	script:bsdutils
	curl:curl
	jq:jq
	python3:python3
	setsid:util-linux
)

missing=()
for need in "${NEEDS[@]}"; do
	cmd="${need%%:*}"
	pkg="${need#*:}"
	if ! command -v "${cmd}" >/dev/null 2>&1; then
		case " ${missing[*]} " in
		*" ${pkg} "*) ;;
		*) missing+=("${pkg}") ;;
		esac
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps: installing ${missing[*]}" >&2
if ((EUID == 0)); then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo apt-get update -qq
	sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
	cat >&2 <<MSG
deps: the tests need Debian packages that are not installed: ${missing[*]}
deps: this user can't install them (not root, no password-less sudo). Run:

    sudo apt-get update && sudo apt-get install -y ${missing[*]}

and then run make test again.
MSG
	exit 1
fi
