"""Threads building and freeing large dicts and lists (for make check and
make bench, with an allocator preloaded).  Prints a digest of what each
thread built, the same under any correct allocator.
    python3 dicts.py [threads [rounds [items]]]   (defaults 4 6 60000)"""
import hashlib
import sys
import threading

nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
items = int(sys.argv[3]) if len(sys.argv) > 3 else 60000
results = [None] * nthreads


def work(tid):
    h = hashlib.sha256()
    keep = []
    for r in range(rounds):
        n = items + 1000 * r
        d = {("k%d_%d" % (tid, i)): [i, str(i * r), b"x" * (i % 50)] for i in range(n)}
        lst = [d[("k%d_%d" % (tid, i))][1] * (1 + i % 3) for i in range(0, n, 3)]
        big = bytearray(200000 + 1000 * r)      # a large block each round
        big[::997] = b"y" * len(big[::997])
        s = set(x for x in lst if len(x) % 2)
        h.update(("%d %d %d %d" % (len(d), len(lst), len(s), sum(big) % 65521)).encode())
        h.update("".join(sorted(s)[:50]).encode())
        keep.append(lst[::100])                # some survive across rounds
        if len(keep) > 2:
            keep.pop(0)
        del d, lst, big, s
    results[tid] = h.hexdigest()[:16]


threads = [threading.Thread(target=work, args=(t,)) for t in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for t, r in enumerate(results):
    print("thread %d %s" % (t, r))
