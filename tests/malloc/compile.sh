#!/bin/sh
# Compile smpmem's core sources (those under the folders given after $1,
# default every src/ folder) with gcc -O2 into a fresh directory under $1
# and print a checksum of the objects (the same under any correct
# allocator: gcc's output does not depend on where its memory came from).
set -e
d=$1/$$
shift
[ $# = 0 ] && set -- src/*
rm -rf "$d"; mkdir -p "$d"
for f in $(for dir in "$@"; do ls "$dir"/*.c; done); do
    gcc -std=c11 -O2 -g0 -Iinclude -DSMP_PORT_INLINE='"../../port/hosted/port_inline.h"' \
        -ffreestanding -c "$f" -o "$d/$(basename "$f" .c).o"
done
cat "$d"/*.o | cksum
rm -rf "$d"
