#!/bin/sh
# Compile smpmem's core sources with gcc -O2 into a fresh directory under
# $1 and print a checksum of the objects (the same under any correct
# allocator: gcc's output does not depend on where its memory came from).
set -e
d=$1/$$
rm -rf "$d"; mkdir -p "$d"
for f in src/*/*.c; do
    gcc -std=c11 -O2 -g0 -Iinclude -DSMP_PORT_INLINE='"../../port/hosted/port_inline.h"' \
        -ffreestanding -c "$f" -o "$d/$(basename "$f" .c).o"
done
cat "$d"/*.o | cksum
rm -rf "$d"
