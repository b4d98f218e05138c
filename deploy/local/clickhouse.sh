#!/usr/bin/env bash
# Runs a local ClickHouse for actorim's archive and tests, without systemd.
# Everything (config, data, logs, pid file) lives under DIR; the server
# listens on 127.0.0.1 only.
#
# TLS: with CLICKHOUSE_TLS_DIR set, the native protocol is served on TCP_PORT
# with TLS only (tcp_port_secure; no plain native port), and clients must
# present a certificate of $CLICKHOUSE_TLS_DIR/ca.pem; the server uses
# server.pem and server.key from that directory (naming 127.0.0.1). The
# HTTP port stays plain, for the script's health check.
# CLICKHOUSE_PASSWORD_FILE, if set, names a file whose content becomes the
# default user's password (users.xml is then mode 0600).
set -euo pipefail

usage() {
	cat >&2 <<'EOF2'
usage: clickhouse.sh install                        install clickhouse-server and clickhouse-client (Debian apt) if missing
       clickhouse.sh start DIR [TCP_PORT] [HTTP_PORT] start clickhouse-server with everything under DIR (ports 19000, 18123)
       clickhouse.sh stop DIR                        stop the clickhouse-server started with DIR
EOF2
	exit 2
}

die() {
	echo "clickhouse.sh: $*" >&2
	exit 1
}

# alive PID: the process exists and is a clickhouse server (not a reused pid).
alive() {
	local comm
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	[[ $comm == clickhouse* ]]
}

ping_ok() {
	[[ $(curl -s --max-time 2 "http://127.0.0.1:$1/ping" 2>/dev/null) == Ok.* ]]
}

cmd_install() {
	if command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null; then
		echo "clickhouse already installed: $(clickhouse-client --version)"
		return
	fi
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	# apt does not start the service here (no systemd); start runs it.
	if ! "${sudo[@]}" apt-get install -y clickhouse-server clickhouse-client curl; then
		"${sudo[@]}" apt-get update
		"${sudo[@]}" apt-get install -y clickhouse-server clickhouse-client curl
	fi
	clickhouse-client --version
}

cmd_start() {
	local dir=$1 tcp=${2:-19000} http=${3:-18123}
	[[ $tcp =~ ^[0-9]+$ && $http =~ ^[0-9]+$ ]] || die "bad ports: $tcp $http"
	command -v clickhouse-server >/dev/null || die "clickhouse-server is not installed; run: $0 install"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local pidfile=$dir/clickhouse.pid
	if [[ -f $pidfile ]] && alive "$(cat "$pidfile")"; then
		ping_ok "$http" || die "clickhouse-server $(cat "$pidfile") runs in $dir but 127.0.0.1:$http does not answer"
		echo "clickhouse-server already running on 127.0.0.1:$tcp (pid $(cat "$pidfile"))"
		return
	fi
	rm -f "$pidfile"
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	local native="<tcp_port>$tcp</tcp_port>" password=""
	if [[ -n ${CLICKHOUSE_TLS_DIR:-} ]]; then
		local t
		t=$(cd "$CLICKHOUSE_TLS_DIR" && pwd)
		native="<tcp_port_secure>$tcp</tcp_port_secure>
    <openSSL><server>
        <certificateFile>$t/server.pem</certificateFile>
        <privateKeyFile>$t/server.key</privateKeyFile>
        <caConfig>$t/ca.pem</caConfig>
        <verificationMode>strict</verificationMode>
        <loadDefaultCAFile>false</loadDefaultCAFile>
        <cacheSessions>true</cacheSessions>
        <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
        <preferServerCiphers>true</preferServerCiphers>
    </server></openSSL>"
	fi
	if [[ -n ${CLICKHOUSE_PASSWORD_FILE:-} ]]; then
		password=$(cat "$CLICKHOUSE_PASSWORD_FILE")
		[[ $password =~ ^[A-Za-z0-9._~+-]+$ ]] || die "the password in $CLICKHOUSE_PASSWORD_FILE must be one word of letters, digits and ._~+-"
	fi
	# <yandex> is the root element 18.16 knows; current releases accept it too.
	cat >"$dir/config.xml" <<EOF2
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    $native
    <http_port>$http</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>1073741824</mark_cache_size>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <users_config>$dir/users.xml</users_config>
</yandex>
EOF2
	(umask 077 && cat >"$dir/users.xml") <<EOF2
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password>$password</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors>
                <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
EOF2
	local log=$dir/log/stdout.log
	# --daemon forks and writes the pid file itself.
	(cd "$dir" && clickhouse-server --config-file="$dir/config.xml" --pid-file="$pidfile" --daemon >"$log" 2>&1) ||
		{ tail -n 20 "$log" "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true; die "clickhouse-server failed to start"; }
	for _ in $(seq 150); do
		if ping_ok "$http"; then
			echo "clickhouse-server running on 127.0.0.1:$tcp (native) and :$http (http) (pid $(cat "$pidfile")), data in $dir"
			return
		fi
		if [[ -f $pidfile ]] && ! alive "$(cat "$pidfile")"; then
			break
		fi
		sleep 0.1
	done
	tail -n 20 "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
	die "clickhouse-server on 127.0.0.1:$http did not answer /ping within 15s"
}

cmd_stop() {
	local pidfile=$1/clickhouse.pid pid
	if [[ ! -f $pidfile ]]; then
		echo "no clickhouse-server running in $1"
		return
	fi
	pid=$(cat "$pidfile")
	if alive "$pid"; then
		kill "$pid"
		for _ in $(seq 300); do
			alive "$pid" || break
			sleep 0.1
		done
		alive "$pid" && die "clickhouse-server $pid did not exit within 30s"
	fi
	rm -f "$pidfile"
	echo "clickhouse-server stopped"
}

case ${1:-} in
install) [[ $# -eq 1 ]] || usage; cmd_install ;;
start) [[ $# -ge 2 && $# -le 4 ]] || usage; cmd_start "$2" "${3:-19000}" "${4:-18123}" ;;
stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
*) usage ;;
esac
