#!/usr/bin/env bash
# The benchmarks (`npm run bench`). Ingestion: this collector against the minimal `ws` + file baseline of
# ../shared/bench (baseline-server.mjs), interleaved rounds in one run, replaying real
# rtcstats.js frames. Prints medians, ranges and ratios (this/baseline); never one absolute time.
#   bench/run.sh [--rounds N] [--scenarios 'ingest-50x2000 connect-500 badtoken-500'] [--pipeline]
#                [--obfuscation] [--methods REGEX] [--no-tokens]
# --methods picks the replayed frames by method (default '' = all frames of the session; '^g$'
# = getStats only, the steady state of a long call). Then POST /tokens requests per second
# against a no-op NestJS endpoint in the same run (bench/tokens.bench.mjs), unless --no-tokens.
# --pipeline also compares Nest's @SubscribeMessage pipeline with a raw ws listener
# (bench/nest-pipeline.mjs), the measurement behind the gateway's design; --obfuscation compares
# the collector with RTCSTATS_OBFUSCATE_IPS off (A) and on (B) replaying the 90 s Chrome session.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${RTCSTATS_SHARED_DIR:-$ROOT/../shared}
SCRATCH=${BENCH_SCRATCH:-${TMPDIR:-/tmp}/rtcstats-bench}
ROUNDS=3
SCENARIOS='ingest-50x2000 connect-500 badtoken-500'
PIPELINE=0
OBFUSCATION=0
METHODS=''
TOKENS=1
while [[ $# -gt 0 ]]; do
  case $1 in
  --rounds) ROUNDS=$2; shift 2 ;;
  --scenarios) SCENARIOS=$2; shift 2 ;;
  --pipeline) PIPELINE=1; shift ;;
  --obfuscation) OBFUSCATION=1; shift ;;
  --methods) METHODS=$2; shift 2 ;;
  --no-tokens) TOKENS=0; shift ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Every load-generator client comes from 127.0.0.1 and replays as fast as it can: the limits are
# raised far out of reach (they still run on every frame, so their cost is measured).
UNLIMITED='RTCSTATS_MAX_CONNECTIONS_PER_IP=1000000 RTCSTATS_MAX_FRAMES_PER_SECOND=1000000 RTCSTATS_MAX_BYTES_PER_SECOND=1TiB'

# ../shared may be read-only: run the harness from a scratch copy with its own node_modules.
HARNESS=$SCRATCH/harness
if [[ ! -d $HARNESS/node_modules ]]; then
  rm -rf "$HARNESS" && mkdir -p "$SCRATCH" && cp -r "$SHARED/bench" "$HARNESS" && chmod -R u+w "$HARNESS"
  (cd "$HARNESS" && npm ci --no-audit --no-fund --silent)
fi
(cd "$ROOT" && npm run --silent build)
# Run a snapshot of the build, so rebuilding the work tree during a long run changes nothing.
APP=$SCRATCH/app
rm -rf "$APP" && mkdir -p "$APP" && cp -r "$ROOT/dist" "$ROOT/package.json" "$APP/" && ln -s "$ROOT/node_modules" "$APP/node_modules"

SECRET=bench-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
FRAMES=$SHARED/fixtures/rtcstats/chrome-loopback-90s.frames.jsonl
OUT=$SCRATCH/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$SCRATCH/base" "$SCRATCH/ours"

bash "$HARNESS/compare.sh" --secret "$SECRET" \
  --a-name baseline --a-url ws://127.0.0.1:8190/ \
  --a-cmd "exec node $HARNESS/baseline-server.mjs --port 8190 --dir $SCRATCH/base/out --secret $SECRET" \
  --a-verify-dir "$SCRATCH/base/out" --a-clean-dir "$SCRATCH/base/out" \
  --b-name collector --b-url ws://127.0.0.1:8191/ \
  --b-cmd "cd $SCRATCH/ours && exec env RTCSTATS_PORT=8191 RTCSTATS_HOST=127.0.0.1 RTCSTATS_DATA_DIR=$SCRATCH/ours/data RTCSTATS_JWT_SECRET=$SECRET RTCSTATS_LOG_LEVEL=warn $UNLIMITED node $APP/dist/src/main.js" \
  --b-clean-dir "$SCRATCH/ours/data" \
  --rounds "$ROUNDS" --scenarios "$SCENARIOS" --dump "$FRAMES" --methods "$METHODS" --out-dir "$OUT/collector"

if [[ $PIPELINE == 1 ]]; then
  bash "$HARNESS/compare.sh" --secret "$SECRET" \
    --a-name raw-listener --a-url ws://127.0.0.1:8192/ \
    --a-cmd "cd $ROOT && exec node bench/nest-pipeline.mjs --mode raw --port 8192 --dir $SCRATCH/raw" \
    --a-verify-dir "$SCRATCH/raw" --a-clean-dir "$SCRATCH/raw" \
    --b-name nest-pipeline --b-url ws://127.0.0.1:8193/ \
    --b-cmd "cd $ROOT && exec node bench/nest-pipeline.mjs --mode nest --port 8193 --dir $SCRATCH/nest" \
    --b-verify-dir "$SCRATCH/nest" --b-clean-dir "$SCRATCH/nest" \
    --rounds "$ROUNDS" --scenarios ingest-50x2000 --dump "$FRAMES" --methods "$METHODS" --out-dir "$OUT/pipeline"
fi
if [[ $OBFUSCATION == 1 ]]; then
  collector() { # $1 port, $2 obfuscation on/off
    echo "cd $SCRATCH/ours && exec env RTCSTATS_PORT=$1 RTCSTATS_HOST=127.0.0.1 RTCSTATS_DATA_DIR=$SCRATCH/ours/data-$2 RTCSTATS_JWT_SECRET=$SECRET RTCSTATS_LOG_LEVEL=warn $UNLIMITED RTCSTATS_OBFUSCATE_IPS=$2 node $APP/dist/src/main.js"
  }
  bash "$HARNESS/compare.sh" --secret "$SECRET" \
    --a-name obfuscation-off --a-url ws://127.0.0.1:8194/ --a-cmd "$(collector 8194 false)" --a-clean-dir "$SCRATCH/ours/data-false" \
    --b-name obfuscation-on --b-url ws://127.0.0.1:8195/ --b-cmd "$(collector 8195 true)" --b-clean-dir "$SCRATCH/ours/data-true" \
    --rounds "$ROUNDS" --scenarios ingest-50x2000 --dump "$FRAMES" --methods "$METHODS" --out-dir "$OUT/obfuscation"
fi
if [[ $TOKENS == 1 ]]; then
  (cd "$ROOT" && node bench/tokens.bench.mjs --rounds "$ROUNDS")
fi
echo "results in $OUT"
