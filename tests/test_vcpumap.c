/* The malloc front end's choice of vCPU per CPU (port/malloc/vcpu_map.h),
 * on CPU sets this machine does not have: sparse ones (containers, NUMA
 * pinning), more CPUs than vCPUs, a single CPU. */
#include "harness.h"
#include "../port/malloc/vcpu_map.h"

static unsigned char allowed[SMPM_CPU_IDS];
static uint8_t vcpu_of[SMPM_CPU_IDS];

static uint64_t map(const int *cpus, int n, int ncpu)
{
    for (int c = 0; c < SMPM_CPU_IDS; c++)
        allowed[c] = 0;
    for (int i = 0; i < n; i++)
        allowed[cpus[i]] = 1;
    return smpm_map_cpus(allowed, ncpu, vcpu_of);
}

/* Fewer allowed CPUs than vCPUs: each prefers a vCPU of its own, whatever
 * their ids, and the rest are spares. */
TEST(sparse_sets_name_distinct_vcpus)
{
    static const int sets[][4] = { { 0, 8 }, { 0, 4 }, { 3, 7 }, { 1, 1023 }, { 0, 1 }, { 2, 3 } };
    for (unsigned s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        uint64_t named = map(sets[s], 2, 4);
        CHECK(vcpu_of[sets[s][0]] != vcpu_of[sets[s][1]], "CPUs %d and %d share vCPU %u",
              sets[s][0], sets[s][1], vcpu_of[sets[s][0]]);
        CHECK(named == ((1u << vcpu_of[sets[s][0]]) | (1u << vcpu_of[sets[s][1]])),
              "named mask %#llx for CPUs %d, %d", (unsigned long long)named, sets[s][0], sets[s][1]);
        CHECK(__builtin_popcountll(~named & 0xf) == 2, "set %u: two spares expected", s);
    }
}

/* More CPUs than vCPUs: every vCPU is preferred by as many CPUs as any
 * other, give or take one, and there are no spares. */
TEST(more_cpus_than_vcpus_spread_evenly)
{
    for (int ncpu = 1; ncpu <= 64; ncpu++) {
        int cpus[100], n = 0;
        for (int c = 5; n < 100; c += 3)          /* a sparse set of 100 */
            cpus[n++] = c;
        uint64_t named = map(cpus, n, ncpu);
        unsigned per[64] = { 0 }, lo = ~0u, hi = 0;
        for (int i = 0; i < n; i++) {
            REQUIRE(vcpu_of[cpus[i]] < ncpu, "vCPU %u of %d", vcpu_of[cpus[i]], ncpu);
            per[vcpu_of[cpus[i]]]++;
        }
        for (int v = 0; v < ncpu; v++) {
            lo = per[v] < lo ? per[v] : lo;
            hi = per[v] > hi ? per[v] : hi;
        }
        CHECK(hi - lo <= 1, "ncpu %d: vCPUs preferred by %u to %u CPUs", ncpu, lo, hi);
        uint64_t all = ncpu == 64 ? ~(uint64_t)0 : ((uint64_t)1 << ncpu) - 1;
        CHECK(named == all, "ncpu %d: named %#llx", ncpu, (unsigned long long)named);
    }
}

/* CPUs outside the set (an affinity widened later) still get a vCPU in
 * range; a single allowed CPU takes vCPU 0. */
TEST(every_cpu_id_maps_in_range)
{
    int one[1] = { 37 };
    uint64_t named = map(one, 1, 6);
    CHECK(vcpu_of[37] == 0 && named == 1, "CPU 37 alone: vCPU %u, named %#llx", vcpu_of[37],
          (unsigned long long)named);
    for (int c = 0; c < SMPM_CPU_IDS; c++)
        if (vcpu_of[c] >= 6) {
            CHECK(0, "CPU %d maps to vCPU %u of 6", c, vcpu_of[c]);
            break;
        }
}

int main(void)
{
    return RUN_TESTS(sparse_sets_name_distinct_vcpus, more_cpus_than_vcpus_spread_evenly,
                     every_cpu_id_maps_in_range);
}
