#!/usr/bin/env bash
# Fetches ECharts from the npm registry, checks it against the registry's published
# integrity hash, and puts the minified build and its licence into the repository, where
# `siyu serve` embeds them (crates/siyu/assets/vendor/echarts). Run it to change the
# pinned version; the files it writes are committed, so nothing is fetched at build or
# run time.
set -euo pipefail
version=${1:-6.1.0}
integrity=${2:-sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA==}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/crates/siyu/assets/vendor/echarts
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://registry.npmjs.org/echarts/-/echarts-$version.tgz" -o "$tmp/echarts.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tmp/echarts.tgz" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
    echo "echarts-$version.tgz: integrity $got, expected $integrity" >&2
    exit 1
fi
tar -xzf "$tmp/echarts.tgz" -C "$tmp" package/dist/echarts.min.js package/LICENSE package/NOTICE
mkdir -p "$out"
cp "$tmp/package/dist/echarts.min.js" "$tmp/package/LICENSE" "$tmp/package/NOTICE" "$out/"
echo "$version" > "$out/VERSION"
echo "ECharts $version in $out"
