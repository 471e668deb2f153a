#!/bin/sh
# Install the peer allocators the kalloc benchmark links against (Debian 12
# packages), with apt-get as root.  A no-op when they are already installed.
#   libjemalloc-dev          jemalloc 5      -ljemalloc
#   libmimalloc-dev          mimalloc 2      -lmimalloc
#   libgoogle-perftools-dev  gperftools     -ltcmalloc_minimal
#   libtbb-dev               oneTBB         -ltbbmalloc
# Usage: ensure-bench-peers.sh        (called by bench/kalloc.mk before linking)
set -e
need=""
for p in libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev libtbb-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "ensure-bench-peers: need$need; run as root so apt-get can install them" >&2
    exit 1
fi
echo "ensure-bench-peers: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $need >/dev/null
