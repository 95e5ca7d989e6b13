#!/usr/bin/env bash
# Two builds of siyu side by side on this machine, in one run, taking turns: the import,
# RFM, CLV and HTTP benchmarks, and each report on a demo pool (wall time and peak memory
# of each command, as a user runs it).
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [REPORTS_POOL_DB]
#
# REPORTS_POOL_DB: a demo pool (say `siyu demo --customers 1000000 --db pool.db`) for the
# reports; left out, the reports are not compared. The pool is opened by the new build
# first (which applies its migrations), so build it with the old one if it must read it.
# An old build without `bench http --simple` runs its only traffic, which is that one.
# Scratch files go to a temporary directory, removed at the end.
set -euo pipefail

old=$1
new=$2
pool=${3:-}
runs=${RUNS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Wall seconds and peak KiB of a command, its output dropped.
timed() { /usr/bin/time -f "%e s %M KiB" "$@" 2>&1 >/dev/null | tail -1; }
# The result row of a bench command as CSV (the last line).
row() { "$@" --format csv 2>/dev/null | tail -1; }

echo "== data: 1,000,000 generated orders; a 100,000-customer demo shop per build"
"$new" bench gen-orders --orders 1000000 --out orders.csv >/dev/null
for b in old new; do "${!b}" --db "demo-$b.db" demo --customers 100000 --out "demo-$b" >/dev/null; done

echo "== bench import --orders 1000000 (phases)"
for r in $(seq "$runs"); do for b in old new; do
    printf '%s run %s: %s\n' "$b" "$r" "$(row "${!b}" bench import --orders 1000000)"
done; done

echo "== rfm --orders (1,000,000 orders), and rfm and clv fit from the demo database"
for r in $(seq "$runs"); do for b in old new; do
    bin=${!b}
    printf '%s run %s: rfm --orders %s; rfm %s; clv fit --orders %s; clv fit %s\n' "$b" "$r" \
        "$(timed "$bin" rfm --orders orders.csv --as-of 2026-12-01)" \
        "$(timed "$bin" --db "demo-$b.db" rfm)" \
        "$(timed "$bin" clv fit --orders "demo-$b/orders.csv")" \
        "$(timed "$bin" --db "demo-$b.db" clv fit)"
done; done

echo "== bench http, the easy traffic, 30 s (events/s is the sixth field of the new build's row)"
for r in $(seq "$runs"); do for b in old new; do
    bin=${!b}
    simple=()
    if "$bin" bench http --help | grep -q -- --simple; then simple=(--simple); fi
    printf '%s run %s: %s\n' "$b" "$r" "$(row "$bin" bench http "${simple[@]}" --seconds 30)"
done; done

if [ -n "$pool" ]; then
    echo "== reports on $pool (wall, peak)"
    "$new" --db "$pool" segment list >/dev/null
    for cmd in "report overview" "report gmv" "report cohorts" "report funnel" "report pareto" \
        "report channels" "report referrals" "report clv" "lifecycle" "rfm" \
        "lifecycle --as-of 2026-06-01" "report funnel --as-of 2026-06-01"; do
        for b in old new; do
            # shellcheck disable=SC2086 # the command's words
            printf '%-34s %s: %s\n' "$cmd" "$b" "$(timed "${!b}" --db "$pool" $cmd)"
        done
    done
fi
