#!/usr/bin/env bash
# Fetches the second validation subject of DATA.md (Gallant lab subject S1, T1 with face, 256³,
# 1 mm, LIA; BSD-2-Clause) from the PyPI sdist of pycortex 1.4.0 to target/data/S1_raw.nii.gz.
# Validation only: never train on it. Used by `cargo run --release -p basin-benches --bin realistic`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/data/S1_raw.nii.gz
[ -s "$out" ] && exit 0
url="https://files.pythonhosted.org/packages/5d/1a/8f4fb7674ea9f29780f991677ee7282758dacbacbdb5029eeb001fb7fb78/pycortex-1.4.0.tar.gz"
sha=9fdb292a2df96bba6087ee07d428969ba1eb07ed03724bcfaca96ec8e28a5fd5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL -o "$tmp/p.tar.gz" "$url"
echo "$sha  $tmp/p.tar.gz" | sha256sum -c --quiet
tar -xzf "$tmp/p.tar.gz" -C "$tmp" pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz
mkdir -p target/data
mv "$tmp/pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz" "$out"
