#!/usr/bin/env bash
# scripts/deps.sh - make sure the Debian packages rlprice builds and tests with are present.
# Called by `make`, `make test` and `make demo`.  Installs them when run as root; otherwise
# prints the exact apt-get line and exits 1.  Prints nothing when everything is present.
set -u
PKGS="build-essential pkg-config libopenblas-dev libhdf5-dev libpq-dev postgresql libcmocka-dev hdf5-tools libcsv-dev libjson-c-dev zlib1g-dev xz-utils libopenmpi-dev openmpi-bin"
missing=""
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v cc >/dev/null 2>&1 || missing="$missing build-essential"
have_pc openblas || missing="$missing libopenblas-dev"
have_pc hdf5 || missing="$missing libhdf5-dev"
have_pc libpq || missing="$missing libpq-dev"
have_pc cmocka || missing="$missing libcmocka-dev"
have_pc json-c || missing="$missing libjson-c-dev"
have_pc zlib || missing="$missing zlib1g-dev"
[ -f /usr/include/csv.h ] || missing="$missing libcsv-dev"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v h5dump >/dev/null 2>&1 || missing="$missing hdf5-tools"
command -v xz >/dev/null 2>&1 || missing="$missing xz-utils"
# Open MPI: optional at build time (NO_MPI=1), installed so `mpirun -np K ./rlprice nightly` works
if [ "${NO_MPI:-}" != 1 ]; then
    have_pc ompi-c || missing="$missing libopenmpi-dev"
    command -v mpirun >/dev/null 2>&1 || missing="$missing openmpi-bin"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "rlprice: missing packages:$missing" >&2
    echo "rlprice: run as root:  apt-get update && apt-get install -y $PKGS" >&2
    exit 1
fi
echo "rlprice: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 && apt-get install -y -qq $PKGS >&2 || { echo "rlprice: apt-get install failed" >&2; exit 1; }
