#!/usr/bin/env bash
# scripts/bench_mpi.sh - weak and strong scaling of `mpirun -np K rlprice nightly` (docs/mpi.md).
#   BUILD=build-nc scripts/bench_mpi.sh [P] [DAYS] [K]      (defaults 128 products, 60 days, 2 ranks)
#   NIGHTLY_FLAGS="--compare.group_size=32" adds settings to every night (FQE is dealt to the ranks
#   in chunks of group_size products: with P <= group_size there is one chunk, on rank 0)
# Starts a throwaway PostgreSQL cluster in $BUILD/pgbench-mpi, simulates P and K*P products into
# two databases, then times whole dry-run nights from cold checkpoints, every process bound to
# one core with one BLAS thread (mpirun -np 1 for the one-rank runs, so binding is the same):
#   weak:   1 rank x P products   vs  K ranks x K*P products (P per rank)   goal: ratio <= 1.15
#   strong: 1 rank x K*P products vs  K ranks x K*P products               (speed-up, ideal K)
# and the bytes rank 0 received from the others; then every rank's wall/cpu seconds per stage
# (eng_stage.h) and the same ratios from the CPU seconds of the busiest rank (what a machine with
# a free core per rank would show).  Prints uptime before and after: on a shared
# machine the figures are only as good as the load lets them be.
set -eu
P=${1:-128}; DAYS=${2:-60}; K=${3:-2}
BUILD=${BUILD:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/rlprice"; [ "$BUILD" = build ] || bin="$root/$BUILD/rlprice"
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (apt-get install openmpi-bin)"; exit 1; }
pg="$root/$BUILD/pgbench-mpi"
eval "$(scripts/pgtmp.sh start "$pg")"
trap 'scripts/pgtmp.sh stop "$pg" >/dev/null' EXIT
tmp="$root/$BUILD/bench-mpi"; rm -rf "$tmp"; mkdir -p "$tmp"
MPI="mpirun --allow-run-as-root --oversubscribe --bind-to core -x OPENBLAS_NUM_THREADS -x PGHOST -x PGPORT -x PGUSER"
export OPENBLAS_NUM_THREADS=1
for n in "$P" "$((K * P))"; do
    db="bench_mpi_$n"
    psql -qAt -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    "$bin" db init --db "dbname=$db" >/dev/null
    "$bin" simulate --products "$n" --days "$DAYS" --seed 1 --db "dbname=$db" | head -n 1
done
date=$(date -d "2024-01-01 + $DAYS days" +%F)
# one timed night: ranks, products, tag -> seconds (the log is in $tmp/<tag>.log)
night() {
    local t0 t1
    t0=$(date +%s.%N)
    $MPI -np "$1" "$bin" nightly --db "dbname=bench_mpi_$2" --date "$date" --window-days "$DAYS" --device cpu \
        --dry-run --out "$tmp/out_$3" --ckpt "$tmp/ckpt_$3" ${NIGHTLY_FLAGS:-} >"$tmp/$3.log" 2>&1 || { echo "bench_mpi: $3 failed:"; tail -n 20 "$tmp/$3.log"; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
echo "load before: $(uptime)"
t_w1=$(night 1 "$P" weak1)
t_wk=$(night "$K" "$((K * P))" weakK)
t_s1=$(night 1 "$((K * P))" strong1)
echo "load after:  $(uptime)"
bytes=$(sed -n 's/.*rank 0 received \([0-9]*\) products from .* (\([0-9.]*\) MiB.*/\1 products, \2 MiB/p' "$tmp/weakK.log" | tail -n 1)
printf 'weak scaling:   1 rank x %d products %.1f s;  %d ranks x %d products %.1f s;  ratio %.2f (goal <= 1.15)\n' \
    "$P" "$t_w1" "$K" "$((K * P))" "$t_wk" "$(echo "$t_wk / $t_w1" | bc -l)"
printf 'strong scaling: 1 rank x %d products %.1f s;  %d ranks %.1f s;  speed-up %.2f (ideal %d)\n' \
    "$((K * P))" "$t_s1" "$K" "$t_wk" "$(echo "$t_s1 / $t_wk" | bc -l)" "$K"
echo "sent to rank 0 by the other ranks: ${bytes:-?}"
# CPU seconds of the busiest rank over the night's top-level stages (load agree compare decide
# report push; rank 0's full line, the others' up to the gather): what the wall time would be
# with a free core per rank and no waiting
cpu_max() {
    grep -h 'stages' "$tmp/$1.log" | grep -v 'rank 0 stages to the gather' | awk '{
        t = 0
        for (i = 1; i <= NF; i++)
            if ($i ~ /^(load|agree|compare|decide|report|push)$/) { split($(i + 1), w, "/"); t += w[2] }
        if (t > m) m = t
    } END { printf "%.2f", m }'
}
c_w1=$(cpu_max weak1); c_wk=$(cpu_max weakK); c_s1=$(cpu_max strong1)
printf 'cpu of the busiest rank: weak %.2f s vs %.2f s, ratio %.2f (goal <= 1.15);  strong speed-up %.2f\n' \
    "$c_wk" "$c_w1" "$(echo "$c_wk / $c_w1" | bc -l)" "$(echo "$c_s1 / $c_wk" | bc -l)"
for tag in weak1 weakK strong1; do
    echo "  $tag: $(grep -h 'time: load' "$tmp/$tag.log" | sed 's/^ *//')"
    # per rank and stage, wall/cpu seconds (cpu = the rank's own work; wall - cpu = waiting for
    # a core or for the other ranks)
    grep -h 'stages' "$tmp/$tag.log" | sed 's/.*nightly: /    /'
done
