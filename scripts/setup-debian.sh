#!/usr/bin/env bash
# Installs every Debian package oddsky's build, tests and benchmarks need.
# Idempotent: packages already present are skipped, and apt is only asked
# when something is missing.  Run as root (or with sudo available).
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config git
            libcfitsio-dev libgsl-dev libyaml-dev libcmocka-dev zlib1g-dev libcsv-dev libexpat1-dev
            libopenblas-dev libomp-dev
            libcairo2-dev fonts-dejavu-core libmicrohttpd-dev libjansson-dev    # report and review page
            libopenmpi-dev openmpi-bin)   # distributed runs: mpirun -np R oddsky run (optional at build time)
check_pkgs=(fitsverify python3-astropy python3-numpy python3-sklearn python3-matplotlib time
            clang llvm libclang-rt-14-dev    # clang + runtimes: the fuzzers (scripts/fuzz)
            chromium chromium-driver python3-selenium)   # the browser tests

bench_pkgs=(r-cran-mlbench r-cran-kernlab r-cran-mclust r-cran-dslabs r-cran-mass r-cran-palmerpenguins)
                              # bench/run only: labelled tables beyond ADBench's (read through Rscript)

# --build-only: the build alone; --bench: also what bench/run reads
want=("${build_pkgs[@]}")
if [ "${1:-}" != "--build-only" ]; then want+=("${check_pkgs[@]}"); fi
if [ "${1:-}" = "--bench" ]; then want+=("${bench_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#want[@]} packages already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
