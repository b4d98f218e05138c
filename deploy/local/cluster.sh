#!/usr/bin/env bash
# A local actorim cluster on loopback: one Consul agent, one Redis, N nodes.
#
#   cluster.sh start [N]   build imnode, start Consul, Redis and N nodes (default 3)
#   cluster.sh stop        stop everything started by `start`
#   cluster.sh status      list the nodes and their addresses
#
# State, logs and pid files live in $CLUSTER_DIR (default ./.cluster). Ports:
# Consul HTTP $CONSUL_PORT (default 18500, and the 3 ports after it), Redis
# $REDIS_PORT (default 16379), node i listens on $BASE_PORT+i (default 18080+i)
# for WebSocket (/ws) and HTTP. The auth and admin secrets are generated once
# into $CLUSTER_DIR/auth.secret and admin.secret (mode 0600); every node reads
# them by file, never on its command line (ps shows it). The nodes' actor
# remotes speak mutual TLS with certificates made once by `imnode
# cluster-certs` in $CLUSTER_DIR/certs; CLUSTER_TLS=off runs them without
# (loopback only, to measure what TLS costs). $IMNODE_ARGS is added to every
# node's command line (e.g. IMNODE_ARGS="--pprof --log-level debug").
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="${CLUSTER_DIR:-$ROOT/.cluster}"
CONSUL_PORT="${CONSUL_PORT:-18500}"
REDIS_PORT="${REDIS_PORT:-16379}"
BASE_PORT="${BASE_PORT:-18080}"

start() {
	local n="${1:-3}"
	mkdir -p "$DIR/bin"
	(cd "$ROOT" && go build -o "$DIR/bin/imnode" ./cmd/imnode)
	for s in auth admin; do
		[ -f "$DIR/$s.secret" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/$s.secret")
		chmod 600 "$DIR/$s.secret"
	done
	"$HERE/consul.sh" start "$CONSUL_PORT" "$DIR/consul"
	"$HERE/redis.sh" start "$REDIS_PORT" "$DIR/redis"
	"$DIR/bin/imnode" cluster-certs "$DIR/certs" "$n" >/dev/null
	for i in $(seq 1 "$n"); do
		local port=$((BASE_PORT + i)) nd="$DIR/node$i" tls
		mkdir -p "$nd"
		if [ -f "$nd/pid" ] && kill -0 "$(cat "$nd/pid")" 2>/dev/null; then continue; fi
		if [ "${CLUSTER_TLS:-on}" = off ]; then
			tls=(--cluster-tls=off)
		else
			tls=(--cluster-tls-ca "$DIR/certs/ca.pem" --cluster-tls-cert "$DIR/certs/node$i.pem" --cluster-tls-key "$DIR/certs/node$i.key")
		fi
		"$DIR/bin/imnode" --cluster consul --consul "127.0.0.1:$CONSUL_PORT" \
			--store redis --redis "127.0.0.1:$REDIS_PORT" "${tls[@]}" \
			--auth-secret-file "$DIR/auth.secret" --admin-secret-file "$DIR/admin.secret" \
			--listen "127.0.0.1:$port" --data "$nd" ${IMNODE_ARGS:-} >"$nd/imnode.log" 2>&1 &
		echo $! >"$nd/pid"
	done
	for i in $(seq 1 "$n"); do
		local port=$((BASE_PORT + i)) ok=""
		for _ in $(seq 1 200); do
			if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
			sleep 0.05
		done
		[ -n "$ok" ] || { echo "node$i did not become ready; log:" >&2; cat "$DIR/node$i/imnode.log" >&2; exit 1; }
	done
	status
}

stop() {
	for pidf in "$DIR"/node*/pid; do
		[ -f "$pidf" ] || continue
		local pid
		pid="$(cat "$pidf")"
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$pidf"
	done
	"$HERE/redis.sh" stop "$DIR/redis" || true
	"$HERE/consul.sh" stop "$DIR/consul" || true
}

status() {
	echo "consul  http://127.0.0.1:$CONSUL_PORT   redis 127.0.0.1:$REDIS_PORT   secrets $DIR/auth.secret $DIR/admin.secret   remote TLS ${CLUSTER_TLS:-on} ($DIR/certs)"
	for nd in "$DIR"/node*; do
		[ -f "$nd/pid" ] || continue
		local i="${nd##*node}"
		local state=down
		kill -0 "$(cat "$nd/pid")" 2>/dev/null && state=up
		echo "node$i  ws://127.0.0.1:$((BASE_PORT + i))/ws  http://127.0.0.1:$((BASE_PORT + i))  $state  (log $nd/imnode.log)"
	done
}

case "${1:-}" in
start) start "${2:-3}" ;;
stop) stop ;;
status) status ;;
*) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
