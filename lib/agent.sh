#!/usr/bin/env bash
# Helpers of bin/compile that put the dynoscope agent binary into the slug.
# Usage: source "${BUILDPACK_DIR}/lib/agent.sh" (after lib/output.sh), then
#   agent::install BUILD_DIR CACHE_DIR ENV_DIR
# Sources, in order: a binary shipped in the buildpack archive (bin/dynoscope-linux-ARCH, made by
# `make buildpack`), the build cache, a download pinned and verified by SHA-256 in manifest.txt
# (DYNOSCOPE_BINARY_URL and DYNOSCOPE_BINARY_SHA256 in ENV_DIR override the manifest and win over
# the archive), and last `go build` from the buildpack's own source when `go` is on the PATH.
# Writes only under BUILD_DIR, CACHE_DIR and a temporary directory (removed by agent::cleanup).

# Where the agent lives in the slug, relative to BUILD_DIR (and to HOME in the dyno).
readonly AGENT_SLUG_PATH=".dynoscope/bin/dynoscope"

# agent::arch prints the Go architecture name of this machine (amd64, arm64).
agent::arch() {
	local machine
	machine="$(uname -m)"
	case "${machine}" in
	x86_64 | amd64) echo "amd64" ;;
	aarch64 | arm64) echo "arm64" ;;
	*)
		output::error <<-MSG
			dynoscope does not support this machine's architecture: ${machine}.

			Release binaries exist for linux/amd64 and linux/arm64 (Heroku's stacks).
			To use another one, build the agent yourself and point the build at it:
			  heroku config:set DYNOSCOPE_BINARY_URL=https://... DYNOSCOPE_BINARY_SHA256=...
		MSG
		return 1
		;;
	esac
}

# agent::manifest_field FILE KEY prints the value(s) of the first line of the manifest that starts with KEY.
# The manifest is plain text: "version X.Y.Z" and "linux-ARCH URL SHA256" lines, '#' comments.
agent::manifest_field() {
	local file="${1}" key="${2}" name rest
	while read -r name rest; do
		if [[ "${name}" == "${key}" ]]; then
			echo "${rest}"
			return 0
		fi
	done <"${file}"
	return 1
}

# agent::sha256 FILE prints the SHA-256 of FILE in lower-case hex.
agent::sha256() {
	local sum
	if command -v sha256sum >/dev/null 2>&1; then
		sum="$(sha256sum "${1}")"
	else
		sum="$(shasum -a 256 "${1}")"
	fi
	echo "${sum%% *}"
}

# agent::env_var ENV_DIR NAME prints the config var NAME from ENV_DIR, or nothing.
agent::env_var() {
	local file="${1}/${2}"
	if [[ -f "${file}" ]]; then
		# Config var files hold the value without a trailing newline; strip one if present.
		local value
		value="$(<"${file}")"
		echo "${value}"
	fi
}

# agent::download URL DEST fetches URL into DEST with retries and a bounded time. The proxy config
# vars of the app (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, in ENV_DIR) apply to it, as to the agent.
agent::download() {
	local url="${1}" dest="${2}" name lower value
	local -a proxy=()
	for name in HTTPS_PROXY HTTP_PROXY NO_PROXY; do
		lower="$(tr '[:upper:]' '[:lower:]' <<<"${name}")"
		value="$(agent::env_var "${AGENT_ENV_DIR:-/nonexistent}" "${name}")"
		if [[ -z "${value}" ]]; then
			value="$(agent::env_var "${AGENT_ENV_DIR:-/nonexistent}" "${lower}")"
		fi
		if [[ -n "${value}" ]]; then
			# curl reads http_proxy only in lower case; set both spellings.
			proxy+=("${name}=${value}" "${lower}=${value}")
		fi
	done
	env ${proxy[@]+"${proxy[@]}"} curl --fail --silent --show-error --location --retry 3 --retry-connrefused \
		--connect-timeout 10 --max-time 300 --output "${dest}" "${url}"
}

# agent::redact URL prints URL without credentials or query string (they may hold tokens).
agent::redact() {
	local url="${1}"
	url="${url%%\?*}"
	if [[ "${url}" =~ ^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@(.*)$ ]]; then
		url="${BASH_REMATCH[1]}${BASH_REMATCH[2]}"
	fi
	echo "${url}"
}

# agent::fetch_verified URL SHA256 DEST downloads URL and moves it to DEST only if its SHA-256 matches.
# Returns 1 when the download failed (the reason is in ${AGENT_TMP_DIR}/curl.err), 2 on a checksum
# mismatch (reported here); nothing is left at DEST in either case.
agent::fetch_verified() {
	local url="${1}" want="${2}" dest="${3}" got shown
	local tmp="${AGENT_TMP_DIR}/download"
	shown="$(agent::redact "${url}")"
	output::indent "Downloading ${shown}"
	if ! agent::download "${url}" "${tmp}" 2>"${AGENT_TMP_DIR}/curl.err"; then
		rm -f "${tmp}"
		return 1
	fi
	got="$(agent::sha256 "${tmp}")"
	if [[ "${got}" != "${want}" ]]; then
		rm -f "${tmp}"
		output::error <<-MSG
			Checksum mismatch for the dynoscope agent downloaded from:
			  ${shown}
			  expected SHA-256 ${want}
			  got      SHA-256 ${got}

			The file is not the release this build pins, so it was not installed.
			If you set DYNOSCOPE_BINARY_URL, set DYNOSCOPE_BINARY_SHA256 to the checksum of
			that file (sha256sum FILE); otherwise the download was corrupted or tampered
			with: retry the build, and report it if it persists.
		MSG
		return 2
	fi
	mv -f "${tmp}" "${dest}"
}

# agent::download_failed URL prints why the download of URL failed and how to fix it.
agent::download_failed() {
	local reason="" shown
	shown="$(agent::redact "${1}")"
	if [[ -f "${AGENT_TMP_DIR}/curl.err" ]]; then
		reason="$(<"${AGENT_TMP_DIR}/curl.err")"
	fi
	output::error <<-MSG
		Failed to download the dynoscope agent from:
		  ${shown}
		${reason:+curl said: ${reason}}

		The build needs this download once (later builds use the build cache) when the
		buildpack comes from a git checkout rather than a release archive. Check that the
		URL is reachable from the build: a GitHub outage, a proxy (set HTTPS_PROXY), or a
		DYNOSCOPE_BINARY_URL config var that points at the wrong place. Then retry:
		  git commit --allow-empty -m "Retry build" && git push heroku main
	MSG
}

# agent::cache_put SRC CACHE_FILE stores SRC in the build cache atomically (never a partial file).
agent::cache_put() {
	local src="${1}" dest="${2}"
	mkdir -p "$(dirname "${dest}")"
	cp "${src}" "${dest}.tmp.$$"
	mv -f "${dest}.tmp.$$" "${dest}"
}

# agent::build_from_source VERSION DEST builds the agent from the buildpack's own source with go.
agent::build_from_source() {
	local version="${1}" dest="${2}" cache_dir="${3}" go_version
	local log="${AGENT_TMP_DIR}/go-build.log"
	go_version="$(go version)"
	output::indent "Building from source with ${go_version}"
	# shellcheck disable=SC2154 # BUILDPACK_DIR is set by bin/compile
	if ! (
		cd "${BUILDPACK_DIR}" &&
			CGO_ENABLED=0 GOCACHE="${GOCACHE:-${cache_dir}/dynoscope/go-build}" \
				GOMODCACHE="${GOMODCACHE:-${cache_dir}/dynoscope/go-mod}" \
				go build -trimpath -ldflags "-s -w -X main.version=${version}" \
				-o "${AGENT_TMP_DIR}/built" ./agent/cmd/dynoscope
	) >"${log}" 2>&1; then
		output::indent <"${log}"
		output::error <<-MSG
			Building the dynoscope agent from source failed (the go output is above).

			The buildpack builds from source only when it has no binary for this machine.
			Use a released buildpack instead, which needs no Go toolchain:
			  heroku buildpacks:add --index 1 https://github.com/brainbytesai/dynoscope#v<version>
		MSG
		return 1
	fi
	mv -f "${AGENT_TMP_DIR}/built" "${dest}"
}

# agent::can_build_from_source succeeds when go is on the PATH and the buildpack holds the agent's source.
agent::can_build_from_source() {
	command -v go >/dev/null 2>&1 && [[ -f "${BUILDPACK_DIR}/go.mod" && -d "${BUILDPACK_DIR}/agent/cmd/dynoscope" ]]
}

# agent::cleanup removes the temporary directory and any partial copy in the slug (an EXIT trap).
agent::cleanup() {
	if [[ -n "${AGENT_TMP_DIR:-}" ]]; then
		rm -rf "${AGENT_TMP_DIR}"
	fi
	if [[ -n "${AGENT_PARTIAL:-}" ]]; then
		rm -f "${AGENT_PARTIAL}"
	fi
}

# agent::install BUILD_DIR CACHE_DIR ENV_DIR installs the agent at BUILD_DIR/.dynoscope/bin/dynoscope.
agent::install() {
	local build_dir="${1}" cache_dir="${2}" env_dir="${3}"
	local arch version url="" sha="" entry cache_file source staged rc
	# shellcheck disable=SC2154 # BUILDPACK_DIR is set by bin/compile
	local manifest="${BUILDPACK_DIR}/manifest.txt"

	arch="$(agent::arch)"
	version="$(agent::manifest_field "${manifest}" version)" || version="unknown"
	url="$(agent::env_var "${env_dir}" DYNOSCOPE_BINARY_URL)"
	sha="$(agent::env_var "${env_dir}" DYNOSCOPE_BINARY_SHA256)"
	sha="$(tr '[:upper:]' '[:lower:]' <<<"${sha}")"

	AGENT_ENV_DIR="${env_dir}"
	AGENT_TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dynoscope-build.XXXXXX")"
	trap agent::cleanup EXIT
	staged="${AGENT_TMP_DIR}/dynoscope"

	if [[ -n "${url}" || -n "${sha}" ]]; then
		if [[ -z "${url}" || ! "${sha}" =~ ^[0-9a-f]{64}$ ]]; then
			output::error <<-MSG
				DYNOSCOPE_BINARY_URL and DYNOSCOPE_BINARY_SHA256 must be set together.

				They replace the agent release pinned by this buildpack, and the build
				installs a downloaded binary only when it knows its SHA-256 (64 hex digits).
				Set both:
				  heroku config:set DYNOSCOPE_BINARY_URL=https://example.com/dynoscope-linux-${arch} \\
				    DYNOSCOPE_BINARY_SHA256=\$(sha256sum dynoscope-linux-${arch} | cut -d' ' -f1)
				or unset both to use the pinned release.
			MSG
			return 1
		fi
		version="custom-${sha:0:12}"
		source="config var DYNOSCOPE_BINARY_URL"
	elif [[ -f "${BUILDPACK_DIR}/bin/dynoscope-linux-${arch}" ]]; then
		source="archive"
	else
		if entry="$(agent::manifest_field "${manifest}" "linux-${arch}")"; then
			read -r url sha <<<"${entry}"
		fi
		source="manifest.txt"
	fi

	if [[ "${source}" == "archive" ]]; then
		output::indent "Using the agent shipped in this buildpack (${version}, linux/${arch})"
		cp "${BUILDPACK_DIR}/bin/dynoscope-linux-${arch}" "${staged}"
	elif [[ -z "${url}" || -z "${sha}" ]]; then
		if ! agent::can_build_from_source; then
			output::error <<-MSG
				No dynoscope agent for linux/${arch} in this buildpack.

				manifest.txt pins no release for linux/${arch}, the buildpack holds no binary,
				and go is not on the PATH to build one. Use a released buildpack:
				  heroku buildpacks:add --index 1 https://github.com/brainbytesai/dynoscope#v<version>
				or set the config vars DYNOSCOPE_BINARY_URL and DYNOSCOPE_BINARY_SHA256.
			MSG
			return 1
		fi
		agent::build_from_source "${version}-src" "${staged}" "${cache_dir}"
	else
		cache_file="${cache_dir}/dynoscope/${version}/linux-${arch}/dynoscope"
		local cached_sha=""
		if [[ -f "${cache_file}" ]]; then
			cached_sha="$(agent::sha256 "${cache_file}")"
		fi
		if [[ "${cached_sha}" == "${sha}" ]]; then
			output::indent "Using the cached agent ${version} (linux/${arch})"
			cp "${cache_file}" "${staged}"
		else
			rc=0
			agent::fetch_verified "${url}" "${sha}" "${staged}" || rc=$?
			if ((rc == 1)) && [[ "${source}" == "manifest.txt" ]] && agent::can_build_from_source; then
				output::indent "Download failed; building from source instead, as go is on the PATH"
				agent::build_from_source "${version}-src" "${staged}" "${cache_dir}"
			elif ((rc == 1)); then
				agent::download_failed "${url}"
				return 1
			elif ((rc != 0)); then
				return 1
			else
				agent::cache_put "${staged}" "${cache_file}"
			fi
		fi
	fi

	chmod 0755 "${staged}"
	local reported
	if ! reported="$("${staged}" version 2>&1)"; then
		output::error <<-MSG
			The dynoscope agent (from ${source}) does not run on this build image:
			  ${reported}

			It is probably built for another OS or architecture than linux/${arch}.
			If you set DYNOSCOPE_BINARY_URL, point it at a linux/${arch} build.
		MSG
		return 1
	fi
	reported="${reported%%$'\n'*}"

	local dest="${build_dir}/${AGENT_SLUG_PATH}"
	mkdir -p "$(dirname "${dest}")"
	AGENT_PARTIAL="${dest}.partial.$$"
	cp "${staged}" "${AGENT_PARTIAL}"
	mv -f "${AGENT_PARTIAL}" "${dest}"
	AGENT_PARTIAL=""
	output::indent "Installed ${AGENT_SLUG_PATH} (${reported})"
}
