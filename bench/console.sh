#!/usr/bin/env bash
# Server time of every console page on a shop: bench/console.sh SIYU DB [ROUNDS] [TENANT]
# Copies nothing: DB is served as it is (give it a copy of a benchmark pool). Starts
# `siyu serve` on a free port, makes a console user, signs in with curl and asks each
# page ROUNDS times (default 5), printing the first (a report page computes its figures:
# the server has just started), the fastest and the median wall time of the request on
# this machine (the client is curl on localhost: the time is the server's, plus well under
# a millisecond of loopback). A report page's later rounds show its kept figures.
set -euo pipefail
siyu=$1; db=$2; rounds=${3:-5}; tenant=${4:-default}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
SIYU_PASSWORD=$password "$siyu" --db "$db" --tenant "$tenant" user delete bench-console >/dev/null 2>&1 || true
SIYU_PASSWORD=$password "$siyu" --db "$db" --tenant "$tenant" user create bench-console --role admin >/dev/null
SIYU_LOG__FILTER=info "$siyu" --db "$db" serve --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# The server sweeps each tenant when it starts (seconds at a million customers), and its
# writes move the tenant's change counter: the pages are asked once it is done.
for _ in $(seq 3000); do grep -q 'swept' "$work/serve.log" && break; sleep 0.1; done
jar=$work/jar
token=$(curl -s -c "$jar" -b "$jar" "http://127.0.0.1:$port/console/sign-in" | grep -o 'name="csrf" value="[0-9a-f]*"' | grep -o '[0-9a-f]\{32\}')
curl -s -c "$jar" -b "$jar" -o /dev/null --data-urlencode "tenant=$tenant" --data-urlencode name=bench-console \
    --data-urlencode "password=$password" --data-urlencode "csrf=$token" "http://127.0.0.1:$port/console/sign-in"
first=$(curl -s -b "$jar" "http://127.0.0.1:$port/console/customers" | grep -o 'href="/console/customers/[^"]*"' | head -1 | cut -d'"' -f2)
segment_page=""
name=$("$siyu" --db "$db" --tenant "$tenant" segment list --format csv 2>/dev/null | awk -F, 'NR == 2 { print $1 }')
if [ -n "$name" ]; then
    segment_page="/console/segments/$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$name")"
fi
printf '%-40s %10s %10s %10s\n' page first fastest median
for page in /console /console/customers "$first" /console/segments $segment_page \
    "/console/segments/check?rule=orders%20%3E%3D%202" /console/gmv /console/rfm /console/lifecycle /console/cohorts \
    /console/channels /console/referrals /console/clv /console/settings; do
    codes=""; : >"$work/times"
    for _ in $(seq "$rounds"); do
        read -r code t < <(curl -s -b "$jar" -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port$page")
        [ "$code" = 200 ] || codes=$code
        echo "$t" >>"$work/times"
    done
    if [ -n "$codes" ]; then printf '%-40s answered %s\n' "$page" "$codes"; continue; fi
    cold=$(head -1 "$work/times")
    sort -n "$work/times" | awk -v page="$page" -v cold="$cold" '{ t[NR] = $1 * 1000 }
        END { printf "%-40s %8.0f ms %8.0f ms %8.0f ms\n", page, cold * 1000, t[1], t[int((NR + 1) / 2)] }'
done
"$siyu" --db "$db" --tenant "$tenant" user delete bench-console >/dev/null
