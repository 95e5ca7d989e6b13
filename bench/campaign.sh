#!/usr/bin/env bash
# Deciding a campaign over a million-customer segment: `siyu campaign run` on a COPY of the
# reports' demo shop (1,000,000 customers, 917,000 orders, 7.8 million events), release build.
#
#   bench/campaign.sh SHOP.db [RUNS]     default 3 runs; SHOP.db is copied, never written
#
# The copy is migrated once (about 40 s at a million customers), a marketing segment of
# every customer and two offers are made, then RUNS campaigns are created and run in turn,
# each timed as a whole process with its peak resident set (GNU time). WORK (default
# /tmp/siyu-bench-campaign) holds the copy; it is deleted at the end.
set -euo pipefail

shop=${1:?usage: bench/campaign.sh SHOP.db [RUNS]}
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=${WORK:-/tmp/siyu-bench-campaign}
siyu="$root/target/release/siyu"

[ -x "$siyu" ] || (cd "$root" && cargo build --release -p siyu)
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cp "$shop" "$work/shop.db"
db=(--db "$work/shop.db")

echo "migrating the copy and making the segment and offers" >&2
"$siyu" "${db[@]}" init >/dev/null
"$siyu" "${db[@]}" segment create everyone 'orders >= 0' >/dev/null
"$siyu" "${db[@]}" coupon create high --min 300 --off 50 >/dev/null
"$siyu" "${db[@]}" coupon create back --off 10 --days 7 >/dev/null

for i in $(seq 1 "$runs"); do
    # A fresh campaign each time: the frequency cap would hold back the earlier sends.
    "$siyu" "${db[@]}" campaign create "bench$i" --segment everyone --message "hello" \
        --value-offer high --lapsed-offer back --frequency-cap 99/7 >/dev/null
    /usr/bin/time -f "%e s elapsed, %M KiB peak resident" \
        "$siyu" "${db[@]}" campaign run "bench$i" 2>&1 | sed -n '1p;$p'
done
