#!/usr/bin/env bash
# Packet-switching benchmark: the same BTP load against the JS reference
# connector (ilp-connector 23.0.2) and against ilptx, one after the other.
#
#   bench/run.sh                    # both connectors (npm ci in bench/ on first use)
#   ONLY=ilptx bench/run.sh         # or ONLY=reference
#
# Knobs (environment): PACKETS (10000), CONCURRENCY (50), WARMUP (500),
# ONLY (both|reference|ilptx), STORE (unset: bench/connector.yml as it is, no
# balance middleware; memory|sqlite|redis: ilptx with that store and a balance
# on both accounts, so every packet reserves and settles twice in it; redis
# starts its own redis-server, appendonly yes + appendfsync REDIS_FSYNC (always), on CPU 1
# with the load generator), PYTHON (interpreter with ilptx and Twisted;
# default: $VIRTUAL_ENV/bin/python, else .venv/bin/python, else
# /work/venv/bin/python, else python3). Runs `npm ci` in bench/ if
# bench/node_modules is missing.
#
# Each connector runs alone with the load generator: on a 2-core machine the
# connector is pinned to CPU 0 and the load generator to CPU 1 (if taskset
# exists). Everything listens on 127.0.0.1 only. Logs and a results.jsonl go
# to bench/results/<timestamp>/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"

PACKETS="${PACKETS:-10000}"
CONCURRENCY="${CONCURRENCY:-50}"
WARMUP="${WARMUP:-500}"
ONLY="${ONLY:-both}"
ILP_ADDRESS="test.bench"

# ilptx's ports are in bench/connector.yml; the reference gets its own.
ILPTX_ALICE_PORT=37768
ILPTX_BOB_PORT=37769
REF_ALICE_PORT=37778
REF_BOB_PORT=37779

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
  elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PYTHON="$ROOT/.venv/bin/python"
  elif [[ -x /work/venv/bin/python ]]; then
    PYTHON=/work/venv/bin/python
  else
    PYTHON=python3
  fi
fi

if [[ ! -d "$HERE/node_modules/ilp-connector" || ! -d "$HERE/node_modules/ilp-plugin-btp" ]]; then
  echo "bench/run.sh: bench/node_modules is missing; running npm ci in bench/" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

CONNECTOR_CPU=()
LOADGEN_CPU=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
  CONNECTOR_CPU=(taskset -c 0)
  LOADGEN_CPU=(taskset -c 1)
fi

OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

CONNECTOR_PID=""
REDIS_PID=""
cleanup() {
  if [[ -n "$CONNECTOR_PID" ]] && kill -0 "$CONNECTOR_PID" 2>/dev/null; then
    kill -TERM "$CONNECTOR_PID" 2>/dev/null || true
    wait "$CONNECTOR_PID" 2>/dev/null || true
  fi
  if [[ -n "$REDIS_PID" ]]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

port_open() {  # port_open PORT: does 127.0.0.1:PORT accept a TCP connection?
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for_ports() {  # wait_for_ports NAME LOG PORT...: up to 20 s, while the connector lives
  local name="$1" log="$2"; shift 2
  local deadline=$((SECONDS + 20)) port
  for port in "$@"; do
    until port_open "$port"; do
      if ! kill -0 "$CONNECTOR_PID" 2>/dev/null; then
        echo "bench/run.sh: $name exited before listening on $port; log: $log" >&2
        tail -n 30 "$log" >&2
        exit 1
      fi
      if (( SECONDS >= deadline )); then
        echo "bench/run.sh: $name not listening on $port after 20 s; log: $log" >&2
        tail -n 30 "$log" >&2
        exit 1
      fi
      sleep 0.1
    done
  done
}

cpu_ticks() {  # cpu_ticks PID: utime+stime of PID in clock ticks (/proc/PID/stat fields 14, 15)
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  rest=${stat##*) }  # the command name (field 2) may contain spaces; fields 3.. follow ") "
  awk '{ print $12 + $13 }' <<<"$rest"
}

stop_connector() {  # SIGTERM, up to 10 s, then SIGKILL
  local name="$1" i
  kill -TERM "$CONNECTOR_PID" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$CONNECTOR_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$CONNECTOR_PID" 2>/dev/null; then
    echo "bench/run.sh: $name still running 10 s after SIGTERM; killing it" >&2
    kill -KILL "$CONNECTOR_PID" 2>/dev/null || true
  fi
  wait "$CONNECTOR_PID" 2>/dev/null || true
  CONNECTOR_PID=""
}

bench_one() {  # bench_one LABEL ALICE_PORT BOB_PORT LOG COMMAND...
  local label="$1" alice="$2" bob="$3" log="$4"; shift 4
  local port
  for port in "$alice" "$bob"; do
    if port_open "$port"; then
      echo "bench/run.sh: 127.0.0.1:$port is already in use; stop whatever holds it" >&2
      exit 1
    fi
  done
  echo "== $label: starting (log: $log)" >&2
  "${CONNECTOR_CPU[@]}" "$@" >"$log" 2>&1 &
  CONNECTOR_PID=$!
  wait_for_ports "$label" "$log" "$alice" "$bob"

  echo "== $label: $WARMUP warm-up + $PACKETS packets, $CONCURRENCY in flight" >&2
  local output status=0 cpu_before cpu_after
  cpu_before=$(cpu_ticks "$CONNECTOR_PID")
  local redis_before=0 redis_after=0
  [[ -n "$REDIS_PID" ]] && redis_before=$(cpu_ticks "$REDIS_PID")
  output="$("${LOADGEN_CPU[@]}" node "$HERE/loadgen.js" \
      --label "$label" \
      --sender "btp+ws://:alice_secret@127.0.0.1:$alice" \
      --receiver "btp+ws://:bob_secret@127.0.0.1:$bob" \
      --destination "$ILP_ADDRESS.bob.x" \
      --packets "$PACKETS" --concurrency "$CONCURRENCY" --warmup "$WARMUP")" || status=$?
  cpu_after=$(cpu_ticks "$CONNECTOR_PID")
  [[ -n "$REDIS_PID" ]] && redis_after=$(cpu_ticks "$REDIS_PID")
  stop_connector "$label"
  # Connector CPU time (user+system) over warm-up + measured packets, in µs per packet:
  # far less sensitive to other load on the machine than packets/s.
  local cpu_us
  cpu_us=$(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$(getconf CLK_TCK)" -v n=$((PACKETS + WARMUP)) \
    'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
  if [[ -n "$output" ]]; then
    head -n 1 <<<"$output" | sed "s/}\$/,\"connectorCpuUsPerPacket\":$cpu_us}/" >>"$RESULTS"
    local redis_note=""
    if [[ -n "$REDIS_PID" ]]; then  # redis-server's own CPU over the same packets
      redis_note=$(awk -v a="$redis_before" -v b="$redis_after" -v hz="$(getconf CLK_TCK)" -v n=$((PACKETS + WARMUP)) \
        'BEGIN { printf ", redis-server CPU %.1f µs/packet", (b - a) * 1e6 / hz / n }')
    fi
    SUMMARIES+=("$(tail -n 1 <<<"$output"), connector CPU $cpu_us µs/packet$redis_note")
  fi
  if (( status != 0 )); then
    echo "bench/run.sh: load generator failed against $label (exit $status); connector log: $log" >&2
    tail -n 30 "$log" >&2
    FAILED=1
  fi
}

SUMMARIES=()
FAILED=0

if [[ "$ONLY" == both || "$ONLY" == reference ]]; then
  REF_ACCOUNTS=$(cat <<EOF
{"alice":{"relation":"child","assetCode":"USD","assetScale":9,"plugin":"ilp-plugin-btp",
  "rateLimit":{"refillPeriod":1000,"refillCount":1000000},
  "options":{"listener":{"port":$REF_ALICE_PORT,"secret":"alice_secret","wsOpts":{"host":"127.0.0.1","port":$REF_ALICE_PORT}}}},
 "bob":{"relation":"child","assetCode":"USD","assetScale":9,"plugin":"ilp-plugin-btp",
  "rateLimit":{"refillPeriod":1000,"refillCount":1000000},
  "options":{"listener":{"port":$REF_BOB_PORT,"secret":"bob_secret","wsOpts":{"host":"127.0.0.1","port":$REF_BOB_PORT}}}}}
EOF
)
  # ilp-plugin-btp 1.5.0 ignores listener.host; wsOpts.host binds 127.0.0.1.
  # rateLimit: the reference's default bucket is 10000 packets/min per account,
  # which a 10000-packet run exceeds (T05); both connectors get 1e6/s instead.
  bench_one reference "$REF_ALICE_PORT" "$REF_BOB_PORT" "$OUT/reference.log" \
    env -u DEBUG \
      CONNECTOR_ILP_ADDRESS="$ILP_ADDRESS" \
      CONNECTOR_BACKEND=one-to-one \
      CONNECTOR_SPREAD=0 \
      CONNECTOR_STORE=memory \
      CONNECTOR_ACCOUNTS="$REF_ACCOUNTS" \
      node "$HERE/node_modules/ilp-connector/dist/index.js"
fi

ILPTX_CONFIG="$HERE/connector.yml"
if [[ -n "${STORE:-}" && ( "$ONLY" == both || "$ONLY" == ilptx ) ]]; then
  # bench/connector.yml plus the store and a balance (limits far from reach) on both accounts
  ILPTX_CONFIG="$OUT/connector-$STORE.yml"
  STORE_LINES="store: $STORE"
  case "$STORE" in
    memory) ;;
    sqlite) STORE_LINES+=$'\n'"storePath: $OUT/ilptx.sqlite" ;;
    redis)
      REDIS_PORT=37790
      mkdir -p "$OUT/redis"
      "${LOADGEN_CPU[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly yes --appendfsync "${REDIS_FSYNC:-always}" --dir "$OUT/redis" >"$OUT/redis.log" 2>&1 &
      REDIS_PID=$!
      for _ in $(seq 100); do port_open "$REDIS_PORT" && break; sleep 0.1; done
      STORE_LINES+=$'\n'"storePath: redis://127.0.0.1:$REDIS_PORT/0" ;;
    *) echo "bench/run.sh: STORE must be memory, sqlite or redis" >&2; exit 2 ;;
  esac
  { echo "$STORE_LINES"
    sed 's/^    rateLimit: .*/&\n    balance: {minimum: "-1000000000000000", maximum: "1000000000000000"}/' "$HERE/connector.yml"
  } >"$ILPTX_CONFIG"
fi

if [[ "$ONLY" == both || "$ONLY" == ilptx ]]; then
  # twistd, not `python -m twisted` (that is `twist`, which has no -n/--pidfile).
  bench_one "ilptx${STORE:+ store=$STORE}" "$ILPTX_ALICE_PORT" "$ILPTX_BOB_PORT" "$OUT/ilptx.log" \
    env -C "$ROOT" "$PYTHON" -c 'import sys; from twisted.scripts.twistd import run; sys.exit(run())' \
      -n --pidfile= ilpconnector --config "$ILPTX_CONFIG"
fi

echo
echo "Results ($PACKETS packets after $WARMUP warm-up, $CONCURRENCY in flight; $OUT):"
for line in "${SUMMARIES[@]}"; do
  echo "  $line"
done
exit "$FAILED"
