#!/usr/bin/env bash
# Usage: scripts/buildpack.sh [VERSION]   (make buildpack)
# Builds dist/dynoscope-buildpack-VERSION.tgz: bin/ (detect, compile, release and static agent
# binaries bin/dynoscope-linux-ARCH), lib/ and a manifest.txt naming VERSION at its root, so that
# bin/compile needs no network. VERSION defaults to the VERSION file, else `git describe` (v-prefix
# stripped), else the manifest's version plus "-dev". Environment:
#   DYNOSCOPE_ARCHES   linux architectures to include (default "amd64 arm64")
#   DYNOSCOPE_PREBUILT directory with dynoscope-linux-ARCH binaries to use instead of building
#   DIST_DIR           output directory (default dist)
set -euo pipefail

BUILDPACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILDPACK_DIR
cd "${BUILDPACK_DIR}"

# buildpack::default_version prints the version of this checkout.
buildpack::default_version() {
	local described base
	if [[ -s VERSION ]]; then
		base="$(<VERSION)"
		echo "${base}"
		return
	fi
	if described="$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null)"; then
		echo "${described#v}"
		return
	fi
	base="$(awk '$1 == "version" { print $2; exit }' manifest.txt)"
	echo "${base:-0.0.0}-dev"
}

# buildpack::build_agent VERSION GOOS GOARCH OUT builds a static, stripped agent binary.
buildpack::build_agent() {
	local version="${1}" goos="${2}" goarch="${3}" out="${4}"
	echo "building ${out##*/} (${goos}/${goarch}, ${version})"
	CGO_ENABLED=0 GOOS="${goos}" GOARCH="${goarch}" \
		go build -trimpath -ldflags "-s -w -X main.version=${version}" -o "${out}" ./agent/cmd/dynoscope
}

main() {
	local version="${1:-}" arches="${DYNOSCOPE_ARCHES:-amd64 arm64}" dist="${DIST_DIR:-dist}"
	local stage arch archive
	if [[ -z "${version}" ]]; then
		version="$(buildpack::default_version)"
	fi
	if [[ ! "${version}" =~ ^[0-9A-Za-z.+_-]+$ ]]; then
		echo "scripts/buildpack.sh: version '${version}' may hold only letters, digits and . + _ -" >&2
		return 2
	fi

	stage="$(mktemp -d "${TMPDIR:-/tmp}/dynoscope-buildpack.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: stage is local
	trap "rm -rf '${stage}'" EXIT
	mkdir -p "${stage}/bin" "${stage}/lib" "${dist}"
	cp bin/detect bin/compile bin/release "${stage}/bin/"
	cp lib/*.sh "${stage}/lib/"
	{
		echo "# dynoscope agent shipped in this buildpack archive (scripts/buildpack.sh)."
		echo "version ${version}"
	} >"${stage}/manifest.txt"

	for arch in ${arches}; do
		if [[ -n "${DYNOSCOPE_PREBUILT:-}" ]]; then
			cp "${DYNOSCOPE_PREBUILT}/dynoscope-linux-${arch}" "${stage}/bin/dynoscope-linux-${arch}"
		else
			buildpack::build_agent "${version}" linux "${arch}" "${stage}/bin/dynoscope-linux-${arch}"
		fi
	done
	chmod 0755 "${stage}"/bin/dynoscope-linux-* "${stage}/bin/detect" "${stage}/bin/compile" "${stage}/bin/release"

	archive="${dist}/dynoscope-buildpack-${version}.tgz"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
		-czf "${archive}.partial" -C "${stage}" bin lib manifest.txt
	mv -f "${archive}.partial" "${archive}"
	echo "${archive}"
}

main "$@"
