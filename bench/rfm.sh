#!/usr/bin/env bash
# RFM from one orders CSV by siyu, DuckDB and Polars on this machine, in the same run:
# the three times, the check that all three agree on every customer, and the ratio.
#
#   bench/rfm.sh [ORDERS [CUSTOMERS [RUNS]]]     default 10000000 orders, 1000000 customers, 3 runs
#
# Environment: AS_OF (default 2025-12-31), WINDOW_DAYS (default: all history), PYTHON (python3).
# DuckDB and Polars come from PyPI into bench/.venv, for the comparison only; siyu never
# links them. The data is siyu's own generator's (`siyu bench gen-orders`), in bench/data/.
# Each tool runs RUNS times, the three taking turns; the best run of each is printed, and
# the ratio of each round (the machine's speed drifts, the three in a round see the same). siyu is timed
# as a whole process (start to exit); DuckDB and Polars from the start of their query
# (which reads the CSV) to the result file written, without Python's start or the import.
set -euo pipefail

orders=${1:-10000000}
customers=${2:-$((orders / 10))}
runs=${3:-3}
as_of=${AS_OF:-2025-12-31}
window=${WINDOW_DAYS:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data="$here/data"
venv="$here/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv and installing duckdb and polars from PyPI" >&2
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    # The versions the README's figures were measured with.
    "$venv/bin/pip" install --quiet "duckdb==2.0.0" "polars==2.1.0"
fi
py="$venv/bin/python"

echo "building siyu (release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p siyu
siyu="$root/target/release/siyu"

mkdir -p "$data"
csv="$data/orders-$orders-$customers.csv"
if [ ! -s "$csv" ]; then
    echo "generating $orders orders of $customers customers into $csv" >&2
    "$siyu" bench gen-orders --orders "$orders" --customers "$customers" --seed 1 --out "$csv.tmp"
    mv "$csv.tmp" "$csv"
fi
# Every tool reads the file from the page cache.
cat "$csv" > /dev/null

declare -A best this
for tool in siyu duckdb polars; do best[$tool]=; done
ratios=()
for ((run = 1; run <= runs; run++)); do
    for tool in siyu duckdb polars; do
        out="$data/rfm-$tool.csv"
        if [ "$tool" = siyu ]; then
            secs=$("$py" "$here/rfm.py" siyu "$siyu" "$csv" "$as_of" "$out" $window)
        else
            secs=$("$py" "$here/rfm.py" "$tool" "$csv" "$as_of" "$out" $window)
        fi
        echo "run $run: $tool ${secs}s" >&2
        this[$tool]=$secs
        if [ -z "${best[$tool]}" ] || awk "BEGIN { exit !($secs < ${best[$tool]}) }"; then
            best[$tool]=$secs
        fi
    done
    # The round's ratio: the faster of DuckDB and Polars over siyu, run one after the other.
    ratios+=("$(awk -v s="${this[siyu]}" -v d="${this[duckdb]}" -v p="${this[polars]}" \
        'BEGIN { f = d < p ? d : p; printf "%.3f", f / s }')")
done

"$py" "$here/rfm.py" check "$data/rfm-siyu.csv" "$data/rfm-duckdb.csv" "$data/rfm-polars.csv"

size=$(du -m "$csv" | cut -f1)
echo
echo "RFM as of $as_of${window:+ over $window days} from $csv ($orders orders, $customers customers, ${size} MiB), $(nproc) cores, best of $runs"
printf '  %-7s %8.2f s\n' siyu "${best[siyu]}" duckdb "${best[duckdb]}" polars "${best[polars]}"
awk -v s="${best[siyu]}" -v d="${best[duckdb]}" -v p="${best[polars]}" 'BEGIN {
    faster = d < p ? d : p; name = d < p ? "DuckDB" : "Polars";
    printf "  siyu is %.2fx as fast as %s, the faster of the two (best times)\n", faster / s, name
}'
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
    printf "%.2f", NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }')
echo "  round by round: ${ratios[*]} (median ${median}x)"
