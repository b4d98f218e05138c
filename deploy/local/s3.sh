#!/usr/bin/env bash
# Local S3 (SeaweedFS) for development and tests, bound to loopback.
#
#   s3.sh install          build SeaweedFS's weed once (cached outside the repo)
#   s3.sh path             print the cached binary's path (installs if missing)
#   s3.sh start PORT DIR   start S3 on 127.0.0.1:PORT (the servers behind it on
#                          PORT+1..PORT+9); data, config, pid and log in DIR
#   s3.sh stop DIR         stop the server started with DIR
#
# One `weed mini` process: master, volume server, filer, S3 gateway and an
# admin server, all on loopback. Choose PORT below 32768 (Linux's ephemeral
# range) so that no outgoing connection holds one of the ports.
# Access key actorim-test, secret key actorim-test-secret (in DIR/s3.json,
# mode 0600; never on a command line). start prints nothing when it works.
# With S3_TLS_DIR set, S3 is also served over TLS on PORT+10 with
# $S3_TLS_DIR/server.pem and server.key (naming 127.0.0.1; ca.pem signs it).
# With S3_WATCH_PID set, the server is stopped when that process ends (a
# test binary that dies without cleaning up). S3_GOMEMLIMIT (default
# 384MiB) is weed's Go memory limit: unlimited, the objects suite takes it
# past 600 MB; at 384MiB to about 270 MB, at 256MiB to 190 MB but slower.
#
# SeaweedFS has no Debian package and no release downloads are reachable
# here, so weed is built through the Go module proxy from a throwaway module
# (several minutes cold). start does not build it: run `make deps`.
set -euo pipefail

SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
CACHE="${ACTORIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/actorim}"
BIN="$CACHE/seaweedfs-$SEAWEEDFS_VERSION/weed"
ACCESS_KEY=actorim-test
SECRET_KEY=actorim-test-secret

die() {
	echo "s3.sh: $*" >&2
	exit 1
}

# built_version FILE: the SeaweedFS module version a weed binary was built from.
built_version() {
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/seaweedfs/seaweedfs" { print $3 }'
}

install() {
	if [ -x "$BIN" ]; then return; fi
	command -v go >/dev/null || die "go is required to build SeaweedFS"
	mkdir -p "$(dirname "$BIN")"
	# A binary of the same version at the old unversioned path is adopted.
	local old="$CACHE/seaweedfs/weed"
	if [ -x "$old" ] && [ "$(built_version "$old")" = "$SEAWEEDFS_VERSION" ]; then
		ln -f "$old" "$BIN.tmp" 2>/dev/null || cp "$old" "$BIN.tmp"
		mv "$BIN.tmp" "$BIN"
		return
	fi
	local work
	work="$(mktemp -d)"
	# The trap clears itself: left set, it would fire again when the caller
	# (start) returns, where $work is gone (set -u: "work: unbound variable").
	trap 'rm -rf "$work"; trap - RETURN' RETURN
	echo "s3.sh: building SeaweedFS $SEAWEEDFS_VERSION into $BIN (several minutes the first time)" >&2
	(
		cd "$work"
		export GOFLAGS=-mod=mod GOTOOLCHAIN=local
		go mod init weedbuild >/dev/null 2>&1
		printf 'package tools\n\nimport _ "github.com/seaweedfs/seaweedfs/weed"\n' >tools.go
		go get "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" >/dev/null 2>&1 ||
			go get "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION"
		go build -ldflags="-s -w" -o "$BIN.tmp" github.com/seaweedfs/seaweedfs/weed
		mv "$BIN.tmp" "$BIN"
	)
}

# alive PID: the process exists and is weed (not a reused pid).
alive() {
	[[ $(cat "/proc/$1/comm" 2>/dev/null) == weed ]]
}

# s3 PORT DIR SCHEME CURL_ARGS...: the HTTP status of a signed request.
# curl reads the credentials from DIR/curl.conf, not from its command line.
s3() {
	local port=$1 dir=$2 scheme=$3 tls=()
	shift 3
	[[ $scheme == https ]] && tls=(--cacert "$S3_TLS_DIR/ca.pem")
	curl -s --max-time 20 -o /dev/null -w '%{http_code}' "${tls[@]}" -K "$dir/curl.conf" \
		--aws-sigv4 aws:amz:us-east-1:s3 "$@" "$scheme://127.0.0.1:$port/${S3_PATH:-}" 2>/dev/null || true
}

# answers PORT DIR [SCHEME]: a signed ListBuckets succeeds.
answers() {
	[[ $(s3 "$1" "$2" "${3:-http}") == 200 ]]
}

# writable PORT DIR: an object can be written and deleted (SeaweedFS lists
# buckets a little before its filer takes writes; a write waits for it).
writable() {
	local b=actorim-ready
	[[ $(S3_PATH=$b s3 "$1" "$2" http -X PUT) =~ ^(200|409)$ ]] &&
		[[ $(S3_PATH=$b/probe s3 "$1" "$2" http -T "$2/probe") == 200 ]] &&
		[[ $(S3_PATH=$b/probe s3 "$1" "$2" http -X DELETE) == 204 ]] &&
		[[ $(S3_PATH=$b s3 "$1" "$2" http -X DELETE) == 204 ]]
}

start() {
	local port=$1 dir=$2
	[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port + 10 < 65536)) || die "bad port: $port"
	[ -x "$BIN" ] || die "SeaweedFS $SEAWEEDFS_VERSION is not built; run: make deps (or $0 install)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local pidfile=$dir/weed.pid
	if [[ -f $pidfile ]] && alive "$(cat "$pidfile")"; then
		answers "$port" "$dir" || die "weed $(cat "$pidfile") runs in $dir but 127.0.0.1:$port does not answer"
		return
	fi
	rm -f "$pidfile"
	mkdir -p "$dir/data"
	(
		umask 077
		printf '{"identities":[{"name":"actorim","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","List","Tagging","Write"]}]}\n' \
			"$ACCESS_KEY" "$SECRET_KEY" >"$dir/s3.json"
		printf 'user = "%s:%s"\n' "$ACCESS_KEY" "$SECRET_KEY" >"$dir/curl.conf"
	)
	echo ok >"$dir/probe"
	local tls=()
	if [[ -n ${S3_TLS_DIR:-} ]]; then
		S3_TLS_DIR=$(cd "$S3_TLS_DIR" && pwd)
		tls=(-s3.port.https=$((port + 10)) -s3.cert.file="$S3_TLS_DIR/server.pem" -s3.key.file="$S3_TLS_DIR/server.key")
	fi
	# `weed mini` rather than `weed server -s3`: both take about 120 MB, but
	# mini accepts writes about 6 s after starting and stops in 3 s, where
	# server's filer holds writes for 10 s and takes 15 s to stop. Small
	# volumes (the tests' objects are small), no telemetry, no extra
	# listeners (WebDAV, Iceberg, Lance, IAM API; the admin server cannot be
	# turned off, only its UI); run in DIR so that no stray filer.toml or
	# security.toml is read.
	(
		cd "$dir"
		export GOMEMLIMIT="${S3_GOMEMLIMIT:-384MiB}"
		exec "$BIN" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
			-s3.port="$port" -s3.port.grpc=$((port + 1)) -s3.config="$dir/s3.json" -s3.localSocket="$dir/s3.sock" \
			-s3.port.iceberg=0 -s3.port.lance=0 -s3.iam=false \
			-master.port=$((port + 2)) -master.port.grpc=$((port + 3)) -master.volumeSizeLimitMB=64 -master.telemetry=false \
			-volume.port=$((port + 4)) -volume.port.grpc=$((port + 5)) -volume.max=16 \
			-filer.port=$((port + 6)) -filer.port.grpc=$((port + 7)) -filer.localSocket="$dir/filer.sock" \
			-admin.port=$((port + 8)) -admin.port.grpc=$((port + 9)) -admin.port.legacy=0 -admin.ui=false \
			-webdav=false "${tls[@]}"
	) </dev/null >"$dir/weed.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$pidfile"
	if [[ -n ${S3_WATCH_PID:-} ]]; then
		(
			while kill -0 "$S3_WATCH_PID" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
			kill "$pid" 2>/dev/null || true
		) </dev/null >/dev/null 2>&1 &
	fi
	for _ in $(seq 1 300); do
		if answers "$port" "$dir"; then
			writable "$port" "$dir" || { kill "$pid"; die "S3 on 127.0.0.1:$port answers but refuses a write (log: $dir/weed.log)"; }
			[[ -z ${S3_TLS_DIR:-} ]] || answers $((port + 10)) "$dir" https ||
				{ kill "$pid"; die "S3 over TLS on 127.0.0.1:$((port + 10)) does not answer (log: $dir/weed.log)"; }
			return
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	local why="did not answer within 30 s"
	kill -0 "$pid" 2>/dev/null || why="exited"
	kill "$pid" 2>/dev/null || true
	grep -E '^[EF][0-9]' "$dir/weed.log" | tail -n 5 >&2 || tail -n 20 "$dir/weed.log" >&2 || true
	die "S3 on 127.0.0.1:$port $why (log: $dir/weed.log)"
}

stop() {
	local pidfile=$1/weed.pid pid
	[ -f "$pidfile" ] || return 0
	pid="$(cat "$pidfile")"
	if alive "$pid"; then
		kill "$pid"
		for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done # about 3 s
		if alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
	fi
	rm -f "$pidfile"
}

case "${1:-}" in
install) [ $# -eq 1 ] || die "usage: s3.sh install"; install ;;
path) install; echo "$BIN" ;;
start) [ $# -eq 3 ] || { echo "usage: s3.sh start PORT DIR" >&2; exit 2; }; start "$2" "$3" ;;
stop) [ $# -eq 2 ] || { echo "usage: s3.sh stop DIR" >&2; exit 2; }; stop "$2" ;;
*) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
