#!/usr/bin/env bash
# Output helpers for the buildpack scripts, in the format Heroku's build log uses.
# Usage: source "${BUILDPACK_DIR}/lib/output.sh"
#   output::step "Installing the dynoscope agent"   -> "-----> Installing the dynoscope agent"
#   output::indent "detail"                           -> "       detail"
#   echo "text" | output::indent                      (indents every line)
#   output::warning <<EOF ... EOF / output::error <<EOF ... EOF  (a message block on stderr)

# output::step prints a build step header.
output::step() {
	echo "-----> $*"
}

# output::indent indents its arguments, or every line of stdin when called without arguments.
output::indent() {
	if (($# > 0)); then
		echo "       $*"
		return
	fi
	local line
	while IFS= read -r line || [[ -n "${line}" ]]; do
		echo "       ${line}"
	done
}

# output::warning prints the message on stdin as a highlighted warning block on stderr.
output::warning() {
	local line
	{
		echo
		while IFS= read -r line || [[ -n "${line}" ]]; do
			echo " !     ${line}"
		done
		echo
	} >&2
}

# output::error prints the message on stdin as an error block on stderr, the same block as a
# warning (as Heroku's own buildpacks do); the caller exits.
output::error() {
	output::warning
}
