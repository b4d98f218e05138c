#!/usr/bin/env bash
# The benchmark suite of docs/benchmarks.md: each case RUNS times (default 3)
# against a fresh standalone node that imbench spawns, the JSON reports kept
# in $OUT, and the median of each headline figure printed at the end.
#
#   deploy/local/bench-suite.sh                 the whole suite, 3 runs each
#   RUNS=1 deploy/local/bench-suite.sh pairs    only the cases whose name starts with "pairs"
#
# Environment: RUNS (3), OUT (/tmp/actorim-bench/<date>), DURATION (10s, the
# measured time of the message cases). Needs go and jq. A run whose checker
# finds a violation stops the suite (imbench exits 1).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
OUT="${OUT:-${TMPDIR:-/tmp}/actorim-bench/$(date -u +%Y%m%dT%H%M%SZ)}"
ONLY="${1:-}"

if ! command -v jq >/dev/null; then
	echo "bench-suite: installing jq" >&2
	sudo_=$(command -v sudo || true)
	$sudo_ apt-get install -y jq >/dev/null || { echo "bench-suite: needs jq (apt-get install jq)" >&2; exit 2; }
fi
mkdir -p "$OUT/bin"
(cd "$ROOT" && go build -o "$OUT/bin/imbench" ./cmd/imbench && go build -o "$OUT/bin/imnode" ./cmd/imnode)
IMBENCH=("$OUT/bin/imbench")
COMMON=(--spawn --imnode "$OUT/bin/imnode" --json --quiet)

# name | imbench arguments | jq expressions of the figures to report (label=expr, space-separated)
CASES=(
	"pairs-closed|pairs --pairs 1000 --duration $DURATION|msgs/s=.window.delivered_per_s p50=.latency_ms.send_delivery.p50 p99=.latency_ms.send_delivery.p99 p999=.latency_ms.send_delivery.p999 node_cpu_s/M=.node.cpu_s_per_million client_cpu_s/M=.client.cpu_s_per_million node_rss_MiB=(.node.rss/1048576)"
	"pairs-open-10k|pairs --pairs 1000 --rate 10000 --duration $DURATION|msgs/s=.window.delivered_per_s p50=.latency_ms.send_delivery.p50 p99=.latency_ms.send_delivery.p99 p999=.latency_ms.send_delivery.p999 node_cpu_s/M=.node.cpu_s_per_million client_cpu_s/M=.client.cpu_s_per_million"
	"pairs-closed-json|pairs --pairs 1000 --json-codec --duration $DURATION|msgs/s=.window.delivered_per_s p99=.latency_ms.send_delivery.p99 node_cpu_s/M=.node.cpu_s_per_million"
	"login-storm|login-storm --users 5000|cold_logins/s=.figures.logins_per_s_cold warm_logins/s=.figures.logins_per_s_warm warm_p99=.latency_ms.login_warm.p99"
	"idle-15k|idle --conns 15000 --duration 10s|node_KiB/conn=.figures.node_rss_per_conn_kib conns/s=.figures.conns_per_s refused=.connections.refused_503"
	"reconnect-storm|reconnect-storm --devices 2000|reconnect_all_s=.figures.time_to_reconnect_all_s resync_all_s=.figures.time_to_resync_all_s resync_p99=.latency_ms.resync.p99"
	"fanout-500|fanout --group-size 500 --rate 200 --duration $DURATION|msgs/s=.figures.messages_per_s deliveries/s=.figures.deliveries_per_s p50=.latency_ms.send_delivery.p50 p99=.latency_ms.send_delivery.p99 node_cpu_s/M_deliveries=.figures.node_cpu_s_per_million_deliveries"
	# Against the bundled reference relay (tools/relay), then actorim, each
	# spawned fresh, 16 sends in flight per pair: the ratios of issue 15.
	"vs-relay|pairs --pairs 1000 --inflight 16 --vs-relay --duration $DURATION|msgs/s=.window.delivered_per_s relay_msgs/s=.figures.ref_delivered_per_s vs_ref=.figures.vs_ref node_cpu_vs_ref=.figures.node_cpu_vs_ref node_cpu_s/M=.node.cpu_s_per_million relay_cpu_s/M=.figures.ref_node_cpu_s_per_million"
	"vs-relay-json|pairs --pairs 1000 --inflight 16 --vs-relay --json-codec --duration $DURATION|msgs/s=.window.delivered_per_s relay_msgs/s=.figures.ref_delivered_per_s vs_ref=.figures.vs_ref node_cpu_vs_ref=.figures.node_cpu_vs_ref node_cpu_s/M=.node.cpu_s_per_million relay_cpu_s/M=.figures.ref_node_cpu_s_per_million"
	# Before-send webhook: the pairs in an app whose webhook (a receiver in
	# imbench) answers in 1 ms, after a reference run in an app without
	# one, each on its own fresh node; vs_ref is the ratio of the rates.
	"webhook-before-send-1ms|pairs --pairs 1000 --webhook-before-send 1ms --duration $DURATION|msgs/s=.window.delivered_per_s ref_msgs/s=.figures.ref_delivered_per_s vs_ref=.figures.vs_ref node_cpu_s/M=.node.cpu_s_per_million ref_node_cpu_s/M=.figures.ref_node_cpu_s_per_million p99=.latency_ms.send_delivery.p99 webhook_conns=.figures.webhook_connections"
	"mix|mix --pairs 1000 --rate 10000 --conns 5000 --duration $DURATION|msgs/s=.window.delivered_per_s p99=.latency_ms.send_delivery.p99 reconnects=.connections.reconnects"
	# Media: MiB/s each way, and as a fraction of the reference (a plain
	# HTTP file server in imbench, measured in the same run); node peak RSS
	# at 1 MiB and 100 MiB and 1 GiB files shows it does not follow the size.
	"media-1MiB|media --size 1MiB --streams 1|up_MiB/s=.figures.upload_mib_per_s down_MiB/s=.figures.download_mib_per_s node_peak_rss_MiB=(.node.rss_peak/1048576)"
	"media-100MiB|media --size 100MiB --streams 1|up_MiB/s=.figures.upload_mib_per_s down_MiB/s=.figures.download_mib_per_s up_vs_ref=.figures.upload_vs_ref down_vs_ref=.figures.download_vs_ref ref_up_MiB/s=.figures.ref_upload_mib_per_s ref_down_MiB/s=.figures.ref_download_mib_per_s node_peak_rss_MiB=(.node.rss_peak/1048576)"
	"media-1GiB|media --size 1GiB --streams 1|up_MiB/s=.figures.upload_mib_per_s down_MiB/s=.figures.download_mib_per_s node_peak_rss_MiB=(.node.rss_peak/1048576)"
	"media-files-1000|media --size 200KiB --streams 1000|up_files/s=.figures.upload_files_per_s down_files/s=.figures.download_files_per_s up_MiB/s=.figures.upload_mib_per_s down_MiB/s=.figures.download_mib_per_s up_vs_ref=.figures.upload_vs_ref down_vs_ref=.figures.download_vs_ref upload_p99=.latency_ms.upload.p99 node_cpu_s_upload=.figures.node_cpu_s_upload node_peak_rss_MiB=(.node.rss_peak/1048576)"
	"media-images-1000|media --size 200KiB --streams 1000 --images|up_files/s=.figures.upload_files_per_s down_files/s=.figures.download_files_per_s up_MiB/s=.figures.upload_mib_per_s down_MiB/s=.figures.download_mib_per_s up_vs_ref=.figures.upload_vs_ref down_vs_ref=.figures.download_vs_ref upload_p99=.latency_ms.upload.p99 node_cpu_s_upload=.figures.node_cpu_s_upload node_peak_rss_MiB=(.node.rss_peak/1048576)"
)

# Runs are interleaved (run 1 of every case, then run 2, ...), so that a
# slow spell of this shared machine touches one run of each case, not every
# run of one.
for i in $(seq 1 "$RUNS"); do
	for c in "${CASES[@]}"; do
		IFS='|' read -r name args _ <<<"$c"
		[[ -z "$ONLY" || "$name" == "$ONLY"* ]] || continue
		echo "== $name run $i/$RUNS: imbench $args" >&2
		# shellcheck disable=SC2086 # args are split on purpose
		"${IMBENCH[@]}" $args "${COMMON[@]}" >"$OUT/$name-$i.json"
		jq -r .summary "$OUT/$name-$i.json" >&2
	done
done

echo "medians of $RUNS run(s) on $(nproc) cores, $(uname -r), $(go version | cut -d' ' -f3); reports in $OUT"
for c in "${CASES[@]}"; do
	IFS='|' read -r name _ figs <<<"$c"
	[[ -z "$ONLY" || "$name" == "$ONLY"* ]] || continue
	line="$name:"
	for f in $figs; do
		label="${f%%=*}" expr="${f#*=}"
		med=$(jq -s "map($expr) | sort | .[(length/2|floor)] | . * 100 | round / 100" "$OUT/$name"-[0-9]*.json)
		line+=" $label $med"
	done
	echo "$line"
done
