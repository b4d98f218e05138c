#!/usr/bin/env bash
# Headless Chromium for the browser tests, from Debian's package (with the
# colour emoji font, so screenshots show what users see).
#
#   chromium.sh install   install chromium and fonts-noto-color-emoji (apt) when missing
#   chromium.sh path      print the browser's path (fails when it is not installed)
#
# The tests drive it with puppeteer-core (web/package.json), which downloads
# no browser of its own; CHROMIUM_BIN overrides the path.
set -euo pipefail

die() {
	echo "chromium.sh: $*" >&2
	exit 1
}

browser() {
	if [[ -n ${CHROMIUM_BIN:-} ]]; then
		echo "$CHROMIUM_BIN"
		return
	fi
	command -v chromium || command -v chromium-browser || return 1
}

install() {
	if browser >/dev/null && dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; then
		return
	fi
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y chromium fonts-noto-color-emoji >/dev/null; then
		"${sudo[@]}" apt-get update >/dev/null
		"${sudo[@]}" apt-get install -y chromium fonts-noto-color-emoji >/dev/null
	fi
	browser >/dev/null || die "chromium installed but not found on PATH"
}

case "${1:-}" in
install) install ;;
path) browser || die "chromium is not installed; run: $0 install (make deps does)" ;;
*) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
