#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that has PyTorch, CMake and a compiler
# but no network and none of xlt's other C++ dependencies: Debian 12 packages of those
# dependencies (unpacked there into gpu-pack/root, never into /), and the shared data the check
# reads (the parity fixtures, XNLI en test, the MultiNLI sample, mBERT's tokenizer files).
# Run it here, where apt and ../shared are at hand; the folder is git-ignored and travels with
# the device tool's `carry` (docs/gpu.md). About 20 MB.
#
# Usage: scripts/gpu_pack.sh [OUT]     (default gpu-pack; XLT_SHARED as for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-pack}
shared=${XLT_SHARED:-../shared}
[ -d "$shared/fixtures" ] || { echo "gpu_pack: no fixtures under $shared (set XLT_SHARED)" >&2; exit 2; }

# The build dependencies of xlt beside libtorch (see ./setup) and the shared libraries they pull
# in that a CUDA image does not usually have. libtorch comes from the machine's PyTorch.
PACKAGES=(
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libtomlplusplus3
  libutf8proc-dev libutf8proc2 libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  libcurl4-openssl-dev libcurl4 libzip-dev libzip4 libssl-dev zlib1g-dev
  libgloo-dev libgloo0 libgtest-dev libgmock-dev googletest
  libbenchmark-dev libbenchmark1debian
  # libcurl4's own dependencies (every xlt binary links libcurl for downloads)
  libnghttp2-14 librtmp1 libssh2-1 libpsl5 libldap-2.5-0 libgssapi-krb5-2 libkrb5-3
  libk5crypto3 libkrb5support0 libkeyutils1 libbrotli1 libsasl2-2 libsasl2-modules-db
  libgnutls30 libhogweed6 libnettle8 libgmp10 libtasn1-6 libp11-kit0 libidn2-0 libunistring2
)

tmp=$(mktemp -d "${out%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debs" "$tmp/shared/data/xnli/labelled" "$tmp/shared/data/xnli/xtreme_format" \
  "$tmp/shared/data/multinli" "$tmp/shared/data/bert-base-multilingual-cased"
(cd "$tmp/debs" && apt-get -o APT::Sandbox::User=root download "${PACKAGES[@]}" >/dev/null)

cp -r "$shared/fixtures" "$tmp/shared/fixtures"
cp "$shared/data/xnli/labelled/test-en.tsv" "$tmp/shared/data/xnli/labelled/"
for lang in en es fr hi; do  # the study step's evaluation sets
  cp "$shared/data/xnli/xtreme_format/dev-$lang.tsv" "$tmp/shared/data/xnli/xtreme_format/"
done
cp "$shared/data/multinli/train.jsonl" "$tmp/shared/data/multinli/"
cp "$shared/data/bert-base-multilingual-cased/"* "$tmp/shared/data/bert-base-multilingual-cased/"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "gpu_pack: $(du -sh "$out" | cut -f1) in $out ($(ls "$out/debs" | wc -l) packages)"
