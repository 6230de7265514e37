#!/usr/bin/env bash
# What the harness's memory scenario (mem_idle) measures, split by where the resident memory is.
# The harness takes RSS 3 s after 2,000 idle clients joined 200 and divides the growth by
# 2,000. This does the same, and splits the growth over the process's mappings:
#   node      the node binary's own pages (file-backed): code the JIT or the runtime ran for the
#             first time during the burst. Paid once per process, not per connection.
#   malloc    [heap]: the C allocator's main arena (libuv handles, Node's socket wraps).
#   anon      anonymous mappings: V8's heap pages, the allocator's other arenas, JIT zones.
#   other     the rest (shared libraries, stack).
# and samples it twice: at +3 s (what the harness reports) and at +LATE s, after V8's memory
# reducer has run (it starts about 8 s after allocation slows).
#
#   apps/myqttd/bench/rss-by-mapping.sh 'exec node apps/myqttd/dist/cli.js --host 127.0.0.1 --port $PORT --storage memory'
#   apps/myqttd/bench/rss-by-mapping.sh 'exec node apps/myqttd/bench/node-floor.mjs'
#
# Needs ../shared/bench/mqttload (make -C ../shared/bench). Linux only (/proc/PID/smaps).
# Settings: PORT (19900), IDLE_BASE (200), IDLE_CONNS (2000), CONN_PAR (50), LATE (12),
# PIN (1: the broker on CPU 0, the clients on CPU 1, as the harness does).
set -euo pipefail

if [ $# -ne 1 ]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
load="$here/../../../../shared/bench/mqttload"
[ -x "$load" ] || { echo "mqttload not found at $load (make -C ../shared/bench)" >&2; exit 2; }
export PORT=${PORT:-19900}
base=${IDLE_BASE:-200}
conns=${IDLE_CONNS:-2000}
par=${CONN_PAR:-50}
late=${LATE:-12}
pin_broker=() pin_load=()
if [ "${PIN:-1}" = 1 ]; then pin_broker=(taskset -c 0) pin_load=(taskset -c 1); fi
work=$(mktemp -d)
broker=""
clients=()
cleanup() {
  for c in "${clients[@]}"; do kill "$c" 2>/dev/null || true; done
  [ -n "$broker" ] && kill "$broker" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# KiB resident per mapping class, as "node malloc anon other".
sample() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { n = $6; c = (n == "") ? "anon" : (n == "[heap]") ? "malloc" : (n ~ /\/node$/) ? "node" : "other" }
    /^Rss:/ { kib[c] += $2 }
    END { printf "%d %d %d %d\n", kib["node"], kib["malloc"], kib["anon"], kib["other"] }
  ' "/proc/$broker/smaps"
}

# Waits for mqttload's ALLCONNECTED line (up to 60 s).
connected() {
  for _ in $(seq 600); do
    grep -q ALLCONNECTED "$1" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "the clients did not all connect; see $1:" >&2
  cat "$1" >&2
  return 1
}

"${pin_broker[@]}" bash -c "$1" >"$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
"${pin_load[@]}" "$load" -p "$PORT" -P 0 -S 0 -C "$base" --conn-par "$par" --hold 600 --quiet >"$work/base.out" 2>&1 &
clients+=($!)
connected "$work/base.out" "${clients[0]}"
sleep 2
read -r n0 m0 a0 o0 < <(sample)
"${pin_load[@]}" "$load" -p "$PORT" -P 0 -S 0 -C "$conns" --conn-par "$par" --hold 600 --quiet >"$work/more.out" 2>&1 &
clients+=($!)
connected "$work/more.out" "${clients[1]}"
sleep 3
read -r n1 m1 a1 o1 < <(sample)
sleep $((late - 3))
read -r n2 m2 a2 o2 < <(sample)

row() { # label node malloc anon other
  awk -v l="$1" -v n="$2" -v m="$3" -v a="$4" -v o="$5" -v c="$conns" 'BEGIN {
    t = n + m + a + o
    printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", l, n / c, m / c, a / c, o / c, t / c, (t - n) / c }'
}
echo "RSS growth per connection, KiB ($conns idle clients joining $base):"
echo
echo "| sampled | node binary | malloc | anon | other | total (harness) | total without the node binary |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row "+3 s" $((n1 - n0)) $((m1 - m0)) $((a1 - a0)) $((o1 - o0))
row "+$late s" $((n2 - n0)) $((m2 - m0)) $((a2 - a0)) $((o2 - o0))
