#!/usr/bin/env bash
# Checks the Node.js the SDK and web tests need (20.19 or later, with npm).
#
#   node.sh check   exit 0 when node >= 20.19 and npm are on PATH; else say what is missing
#
# Debian bookworm's own nodejs package is 18, too old for Vite 8: these
# machines carry Node 20 (NodeSource's build); elsewhere install Node 20.19+
# or 22 by your distribution's means before `make test`.
set -euo pipefail

want_major=20 want_minor=19

check() {
	command -v node >/dev/null || { echo "node.sh: node is not installed (want $want_major.$want_minor or later)" >&2; exit 1; }
	command -v npm >/dev/null || { echo "node.sh: npm is not installed" >&2; exit 1; }
	local v major minor
	v=$(node --version) # v20.20.2
	IFS=. read -r major minor _ <<<"${v#v}"
	if ((major < want_major || (major == want_major && minor < want_minor))); then
		echo "node.sh: node $v is too old: the SDK and web tests want $want_major.$want_minor or later" >&2
		exit 1
	fi
}

case "${1:-}" in
check) check ;;
*) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
