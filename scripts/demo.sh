#!/usr/bin/env bash
# scripts/demo.sh - what `make demo` runs: the nightly pricing run on the Dominick's orange-juice
# data, from nothing to a pushed run and a report (docs/nightly.md).
#   1. a database: --db / PG* variables when given, else the embedded cluster (rlprice db start);
#   2. rlprice db init; rlprice import --preset dominicks (upsert: a second run changes nothing);
#   3. rlprice nightly for the week after the last week of the data (1992-10-08), on the stores
#      in DEMO_PRODUCTS (default: all 913 store x brand products), report in out/demo/.
# Idempotent: a second `make demo` replaces the same run (same date and configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s.%N)
BUILD=${BUILD:-build}
# the data ships in data/datasets/dominicks_oj (xz); `make` unpacks it into $BUILD/datasets
DATA=${RLPRICE_DATA_DIR:-$BUILD/datasets}/dominicks_oj
if [ ! -r "$DATA/oj_store_brand_week.csv" ]; then
    echo "demo: the Dominick's data is not unpacked at $DATA (run \`make\` first; it ships in data/datasets/dominicks_oj)" >&2
    exit 1
fi
PRODUCTS=${DEMO_PRODUCTS:-dom-*}
DATE=1992-10-08
OUT=out/demo

if [ -z "${PGHOST:-}${PGDATABASE:-}${PGSERVICE:-}${PGPORT:-}" ]; then
    echo "demo: starting the embedded PostgreSQL cluster (.pgdata/)"
    eval "$(./rlprice db start)"
fi
./rlprice db init
echo "demo: importing the Dominick's orange-juice data from $DATA"
./rlprice import --preset dominicks --dir "$DATA"
echo "demo: nightly run for $DATE on $PRODUCTS"
set +e
./rlprice nightly --date "$DATE" --products "$PRODUCTS" --config scripts/demo.cfg --out "$OUT" \
    --ckpt "$OUT/ckpt" --device auto
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 4 ]; then
    echo "demo: the nightly run failed (exit code $rc)" >&2
    exit $rc
fi
t1=$(date +%s.%N)
echo
echo "demo: done in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s$( [ $rc -eq 4 ] && echo ' (some products failed: see above)')"
echo "  report (HTML):          $OUT/latest/report.html"
echo "  report (JSON):          $OUT/latest/report.json"
echo "  recommendations (JSON): $OUT/latest/recommendations.json"
echo "  checkpoints:            $OUT/ckpt/"
echo "  database:               $(./rlprice db env 2>/dev/null | tr '\n' ' ' | sed 's/export //g')"
echo "  query it:               psql -c \"SELECT product_id, incumbent_price, price, agent, reason FROM price_recommendations"
echo "                           WHERE run_id = (SELECT run_id FROM pricing_runs WHERE run_date = '$DATE' ORDER BY started_at DESC LIMIT 1)\""
