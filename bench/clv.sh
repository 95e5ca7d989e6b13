#!/usr/bin/env bash
# Lifetime-value models fitted by siyu and by Python's lifetimes on the same calibration
# summary, in the same run: the times, the check that every estimate agrees to 1e-4
# relative (log-likelihoods too), and the speed ratio.
#
#   bench/clv.sh [CUSTOMERS [RUNS]]          default 100000 customers, 3 runs
#
# Environment: SEED (default 7), UNTIL (default 2025-06-30), PYTHON (python3).
# The data is siyu's demo shop (`siyu demo`: customers who buy by a BG/NBD process with
# lognormal spend), built into a scratch SQLite database in bench/data/; `siyu clv summary`
# writes its calibration summary (calibration end: the last day with a paid order), which
# both tools then fit:
#   siyu       `siyu clv fit --summary FILE --format json`, timed as a whole process
#              (start to exit, reading the CSV included);
#   lifetimes  BetaGeoFitter + GammaGammaFitter (defaults: penalizer 0, tol 1e-7), timed
#              from pandas reading the CSV to the second fit (Python's start and the imports
#              not counted).
# Also timed, for reference: `siyu clv fit --format json` from the database itself (reading
# every order from SQLite and summarising them included). lifetimes comes from PyPI into
# bench/.venv, for the comparison only; siyu never links it. Each tool runs RUNS times,
# taking turns; the best run of each is printed, and the ratio of each round.
set -euo pipefail

customers=${1:-100000}
runs=${2:-3}
seed=${SEED:-7}
until=${UNTIL:-2025-06-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data="$here/data"
venv="$here/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
fi
py="$venv/bin/python"
if ! "$py" -c "import lifetimes, pandas, scipy, numpy" 2>/dev/null; then
    echo "installing lifetimes (with pandas, scipy, numpy) from PyPI into $venv" >&2
    "$venv/bin/pip" install --quiet "lifetimes==0.11.3" pandas scipy numpy
fi

echo "building siyu (release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p siyu
siyu="$root/target/release/siyu"

mkdir -p "$data"
db="$data/clv-$customers-$seed.db"
if [ ! -s "$db" ]; then
    echo "building the demo shop of $customers customers (seed $seed, until $until) into $db" >&2
    rm -f "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
    "$siyu" --db "$db.tmp" demo --customers "$customers" --seed "$seed" --until "$until" --format json > /dev/null
    mv "$db.tmp" "$db"
fi
summary="$data/clv-summary-$customers-$seed.csv"
"$siyu" --db "$db" clv summary --out "$summary" >&2
cat "$summary" > /dev/null

declare -A best this
for tool in siyu siyu_db lifetimes; do best[$tool]=; done
ratios=()
for ((run = 1; run <= runs; run++)); do
    for tool in siyu siyu_db lifetimes; do
        out="$data/clv-$tool.json"
        case $tool in
            siyu) secs=$("$py" "$here/clv.py" siyu "$out" "$siyu" --db "$db" clv fit --summary "$summary" --format json) ;;
            siyu_db) secs=$("$py" "$here/clv.py" siyu "$out" "$siyu" --db "$db" clv fit --format json) ;;
            lifetimes) secs=$("$py" "$here/clv.py" lifetimes "$summary" "$out") ;;
        esac
        echo "run $run: $tool ${secs}s" >&2
        this[$tool]=$secs
        if [ -z "${best[$tool]}" ] || awk "BEGIN { exit !($secs < ${best[$tool]}) }"; then
            best[$tool]=$secs
        fi
    done
    ratios+=("$(awk -v s="${this[siyu]}" -v l="${this[lifetimes]}" 'BEGIN { printf "%.1f", l / s }')")
done

worst=$("$py" "$here/clv.py" check "$summary" "$data/clv-lifetimes.json" "$data/clv-siyu.json" "$data/clv-siyu_db.json")

buyers=$(($(wc -l < "$summary") - 1))
echo
echo "BG/NBD + Gamma-Gamma fit on the calibration summary of the demo shop ($customers customers, seed $seed, until $until: $buyers buyers), $(nproc) cores, best of $runs"
echo "  $("$py" "$here/clv.py" versions)"
printf '  %-38s %8.3f s\n' "siyu clv fit --summary FILE" "${best[siyu]}" \
    "siyu clv fit (from the SQLite database)" "${best[siyu_db]}" \
    "lifetimes (read CSV, fit both)" "${best[lifetimes]}"
awk -v s="${best[siyu]}" -v d="${best[siyu_db]}" -v l="${best[lifetimes]}" 'BEGIN {
    printf "  siyu is %.1fx as fast as lifetimes on the same summary (%.1fx from the database), best times\n", l / s, l / d
}'
echo "  round by round: ${ratios[*]}"
echo "  every parameter and log-likelihood agrees with lifetimes to ${worst} relative (required: 1e-4)"
