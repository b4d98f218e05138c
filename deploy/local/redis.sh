#!/usr/bin/env bash
# Runs a local Redis for actorim's cluster mode and tests, without systemd.
# Redis is configured as the Redis store requires: append-only file fsynced
# before every reply (appendonly yes, appendfsync always), no RDB snapshots.
#
# TLS: with REDIS_TLS_DIR set, the server listens on PORT with TLS only,
# requires client certificates, and uses $REDIS_TLS_DIR/ca.pem,
# server.pem and server.key (the certificate naming 127.0.0.1); the script
# pings it with client.pem and client.key from the same directory.
# REDIS_PASSWORD_FILE, if set, names a file whose content becomes the
# default user's password (written into DIR/auth.conf, mode 0600, never on a
# command line).
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: redis.sh install          install redis-server (Debian apt) if it is missing
       redis.sh start PORT DIR   start redis-server on 127.0.0.1:PORT with its data in DIR
       redis.sh stop DIR         stop the redis-server started with DIR
EOF
	exit 2
}

die() {
	echo "redis.sh: $*" >&2
	exit 1
}

# alive PID: the process exists and is a redis-server (not a reused pid).
alive() {
	local comm
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	[[ $comm == redis-server* ]]
}

# cli PORT ARGS...: redis-cli against the local server (2 s at most), over
# TLS and with the password when the server has them.
cli() {
	local port=$1
	shift
	local tls=()
	if [[ -n ${REDIS_TLS_DIR:-} ]]; then
		tls=(--tls --cacert "$REDIS_TLS_DIR/ca.pem" --cert "$REDIS_TLS_DIR/client.pem" --key "$REDIS_TLS_DIR/client.key")
	fi
	if [[ -n ${REDIS_PASSWORD_FILE:-} ]]; then
		REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") timeout 2 redis-cli -h 127.0.0.1 -p "$port" "${tls[@]}" "$@"
	else
		timeout 2 redis-cli -h 127.0.0.1 -p "$port" "${tls[@]}" "$@"
	fi
}

pong() {
	[[ $(cli "$1" ping 2>/dev/null) == PONG ]]
}

cmd_install() {
	if command -v redis-server >/dev/null; then
		echo "redis-server already installed: $(redis-server --version)"
		return
	fi
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y redis-server; then
		"${sudo[@]}" apt-get update
		"${sudo[@]}" apt-get install -y redis-server
	fi
	redis-server --version
}

cmd_start() {
	local port=$1 dir=$2
	[[ $port =~ ^[0-9]+$ ]] || die "bad port: $port"
	command -v redis-server >/dev/null || die "redis-server is not installed; run: $0 install"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local pidfile=$dir/redis.pid
	if [[ -f $pidfile ]] && alive "$(cat "$pidfile")"; then
		pong "$port" || die "redis-server $(cat "$pidfile") runs in $dir but 127.0.0.1:$port does not answer"
		echo "redis-server already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
		return
	fi
	rm -f "$pidfile"
	local log=$dir/redis.log logstart
	logstart=$(stat -c %s "$log" 2>/dev/null || echo 0)
	local extra=() conf=()
	if [[ -n ${REDIS_TLS_DIR:-} ]]; then
		local t
		t=$(cd "$REDIS_TLS_DIR" && pwd)
		extra=(--port 0 --tls-port "$port" --tls-cert-file "$t/server.pem" --tls-key-file "$t/server.key"
			--tls-ca-cert-file "$t/ca.pem" --tls-auth-clients yes)
	else
		extra=(--port "$port")
	fi
	if [[ -n ${REDIS_PASSWORD_FILE:-} ]]; then
		[[ $(cat "$REDIS_PASSWORD_FILE") =~ ^[^\"\\[:space:]]+$ ]] || die "the password in $REDIS_PASSWORD_FILE must be one word without quotes or backslashes"
		(umask 077 && printf 'requirepass "%s"\n' "$(cat "$REDIS_PASSWORD_FILE")" >"$dir/auth.conf")
		conf=("$dir/auth.conf")
	fi
	redis-server "${conf[@]}" "${extra[@]}" --bind 127.0.0.1 \
		--appendonly yes --appendfsync always --save "" \
		--dir "$dir" --daemonize yes --pidfile "$pidfile" --logfile "$log"
	for _ in $(seq 100); do
		if pong "$port"; then
			echo "redis-server running on 127.0.0.1:$port (pid $(cat "$pidfile")), data in $dir"
			return
		fi
		# The daemon logs why it gave up (port taken, unreadable AOF, ...).
		if tail -c "+$((logstart + 1))" "$log" | grep -qiE 'aborting|fatal|bad file format'; then
			tail -c "+$((logstart + 1))" "$log" | tail -n 5 >&2
			die "redis-server failed to start on 127.0.0.1:$port"
		fi
		sleep 0.1
	done
	tail -n 20 "$log" >&2 || true
	die "redis-server on 127.0.0.1:$port did not answer PING within 10s"
}

cmd_stop() {
	local pidfile=$1/redis.pid pid
	if [[ ! -f $pidfile ]]; then
		echo "no redis-server running in $1"
		return
	fi
	pid=$(cat "$pidfile")
	if alive "$pid"; then
		# SIGTERM makes Redis fsync the append-only file and exit cleanly.
		kill "$pid"
		for _ in $(seq 100); do
			alive "$pid" || break
			sleep 0.1
		done
		alive "$pid" && die "redis-server $pid did not exit within 10s"
	fi
	rm -f "$pidfile"
	echo "redis-server stopped"
}

case ${1:-} in
install) [[ $# -eq 1 ]] || usage; cmd_install ;;
start) [[ $# -eq 3 ]] || usage; cmd_start "$2" "$3" ;;
stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
*) usage ;;
esac
