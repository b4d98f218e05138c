#!/usr/bin/env bash
# Local Consul for development and tests, bound to loopback.
#
#   consul.sh install            build the agent once (cached outside the repo)
#   consul.sh path               print the cached binary's path (installs if missing)
#   consul.sh start BASEPORT DIR start a dev agent: HTTP on BASEPORT, its other
#                                ports on BASEPORT+1.. ; state, pid and log in DIR
#   consul.sh stop DIR           stop the agent started with DIR
#
# Consul has no Debian package and no release downloads are reachable here, so
# the agent is built through the Go module proxy (about 7.5 min cold, 20 s
# warm). consul's go.mod has replace directives, so `go install` refuses it:
# it is built from a throwaway module instead.
set -euo pipefail

CONSUL_VERSION="${CONSUL_VERSION:-v1.22.3}"
CACHE="${ACTORIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/actorim}"
BIN="$CACHE/consul-$CONSUL_VERSION/consul"

install() {
	if [ -x "$BIN" ]; then return; fi
	command -v go >/dev/null || { echo "consul.sh: go is required to build consul" >&2; exit 1; }
	local work
	work="$(mktemp -d)"
	# The trap clears itself: left set, it would fire again when the caller
	# (start) returns, where $work is gone (set -u: "work: unbound variable").
	trap 'rm -rf "$work"; trap - RETURN' RETURN
	echo "consul.sh: building consul $CONSUL_VERSION into $BIN (several minutes the first time)" >&2
	(
		cd "$work"
		export GOFLAGS=-mod=mod GOTOOLCHAIN=local
		go mod init consulbuild >/dev/null 2>&1
		printf 'package tools\n\nimport _ "github.com/hashicorp/consul"\n' >tools.go
		go get "github.com/hashicorp/consul@$CONSUL_VERSION" >/dev/null
		mkdir -p "$(dirname "$BIN")"
		go build -ldflags="-s -w" -o "$BIN.tmp" github.com/hashicorp/consul
		mv "$BIN.tmp" "$BIN"
	)
}

start() {
	local base="$1" dir="$2"
	install
	mkdir -p "$dir"
	if [ -f "$dir/consul.pid" ] && kill -0 "$(cat "$dir/consul.pid")" 2>/dev/null; then
		echo "consul.sh: already running (pid $(cat "$dir/consul.pid"))" >&2
		return
	fi
	"$BIN" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -node "actorim-$base" \
		-http-port "$base" -dns-port -1 -grpc-port -1 -grpc-tls-port -1 \
		-server-port $((base + 1)) -serf-lan-port $((base + 2)) -serf-wan-port $((base + 3)) \
		-data-dir "$dir/data" -log-level warn >"$dir/consul.log" 2>&1 &
	echo $! >"$dir/consul.pid"
	for _ in $(seq 1 200); do
		if curl -fsS "http://127.0.0.1:$base/v1/status/leader" 2>/dev/null | grep -q ':'; then
			return
		fi
		sleep 0.05
	done
	echo "consul.sh: agent on port $base has no leader; log:" >&2
	cat "$dir/consul.log" >&2
	exit 1
}

stop() {
	local dir="$1" pid
	[ -f "$dir/consul.pid" ] || return 0
	pid="$(cat "$dir/consul.pid")"
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/consul.pid"
}

case "${1:-}" in
install) install ;;
path) install; echo "$BIN" ;;
start) [ $# -eq 3 ] || { echo "usage: consul.sh start BASEPORT DIR" >&2; exit 2; }; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || { echo "usage: consul.sh stop DIR" >&2; exit 2; }; stop "$2" ;;
*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
