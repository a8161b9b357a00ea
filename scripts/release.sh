#!/usr/bin/env bash
# Usage: scripts/release.sh [VERSION]   (make release; VERSION defaults to the VERSION file)
# Builds the release binaries of dynoscope VERSION into dist/release/vVERSION/ (linux amd64+arm64 for
# the buildpack, darwin amd64+arm64 and windows amd64 for `dynoscope setup` on laptops) with
# SHA256SUMS, rewrites manifest.txt to pin them at the project's GitHub release URL, and builds the
# buildpack archive from the same binaries. Publishing (tag, GitHub release upload) is out of scope:
# commit manifest.txt, tag vVERSION, and upload dist/release/vVERSION/* to that release.
set -euo pipefail

BUILDPACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly BUILDPACK_DIR
readonly RELEASE_URL="https://github.com/brainbytesai/dynoscope/releases/download"
cd "${BUILDPACK_DIR}"

main() {
	local version="${1:-${VERSION:-}}" dist="${DIST_DIR:-dist}" out target goos goarch name sum
	if [[ -z "${version}" && -s VERSION ]]; then
		version="$(<VERSION)"
	fi
	if [[ ! "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
		echo "usage: scripts/release.sh VERSION (semantic version without the v, e.g. 0.1.0; got '${version}')" >&2
		return 2
	fi
	out="${dist}/release/v${version}"
	rm -rf "${out}"
	mkdir -p "${out}"

	for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
		goos="${target%/*}"
		goarch="${target#*/}"
		name="dynoscope-${goos}-${goarch}"
		if [[ "${goos}" == windows ]]; then
			name="${name}.exe"
		fi
		echo "building ${name}"
		CGO_ENABLED=0 GOOS="${goos}" GOARCH="${goarch}" \
			go build -trimpath -ldflags "-s -w -X main.version=${version}" -o "${out}/${name}" ./agent/cmd/dynoscope
	done
	(cd "${out}" && sha256sum dynoscope-* >SHA256SUMS)

	{
		echo "# dynoscope agent release pinned by this buildpack. Written by scripts/release.sh (\`make release\`);"
		echo "# read by bin/compile when the buildpack has no binary of its own (a git checkout rather than the"
		echo "# archive from \`make buildpack\`). Lines: \"version X.Y.Z\", then \"linux-ARCH URL SHA256\"."
		echo "version ${version}"
		for goarch in amd64 arm64; do
			sum="$(sha256sum "${out}/dynoscope-linux-${goarch}")"
			echo "linux-${goarch} ${RELEASE_URL}/v${version}/dynoscope-linux-${goarch} ${sum%% *}"
		done
	} >manifest.txt.partial
	mv -f manifest.txt.partial manifest.txt
	echo "wrote manifest.txt for v${version}"

	DYNOSCOPE_PREBUILT="${out}" DIST_DIR="${dist}" scripts/buildpack.sh "${version}"
}

main "$@"
