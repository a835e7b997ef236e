#include "synthetic_stacks.h"

#include <array>
#include <utility>

#include "absl/base/attributes.h"

namespace bench {

namespace {

volatile int g_sink;

// Distinct bodies, so that identical-code folding cannot merge them.
template <int K>
ABSL_ATTRIBUTE_NOINLINE void PoolFunction() {
  g_sink = K;
  g_sink = K + 1;
}

template <size_t... K>
constexpr std::array<void (*)(), sizeof...(K)> MakePool(std::index_sequence<K...>) {
  return {&PoolFunction<int(K)>...};
}

const std::array<void (*)(), kPoolFunctions> kPool =
    MakePool(std::make_index_sequence<kPoolFunctions>{});

uintptr_t PoolAddress(uint64_t n) {
  // A return address points after a call: +1..+13 stays inside the
  // function's first bytes (every PoolFunction is longer than that).
  const uint64_t f = n % kPoolFunctions;
  const uint64_t offset = 1 + 4 * ((n / kPoolFunctions) % kAddressesPerFunction);
  return reinterpret_cast<uintptr_t>(kPool[f]) + offset;
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  return x;
}

}  // namespace

void SyntheticStack(uint64_t i, int depth, lockprof::agent::StackTrace* out) {
  constexpr uint64_t kAddresses = kPoolFunctions * kAddressesPerFunction;
  // The three leaf frames spell i in base kAddresses (distinct stacks); the
  // rest, towards the root, are a pseudo-random path that repeats often, as
  // callers near main do.
  out->pcs[0] = PoolAddress(i % kAddresses);
  out->pcs[1] = PoolAddress((i / kAddresses) % kAddresses);
  out->pcs[2] = PoolAddress((i / kAddresses / kAddresses) % kAddresses);
  for (int d = 3; d < depth; ++d) out->pcs[d] = PoolAddress(Mix(i % 64 * 131 + uint64_t(d)));
  out->depth = depth;
}

void AddSyntheticStacks(lockprof::agent::StackTable& table, uint64_t first, int n, int depth) {
  lockprof::agent::StackTrace stack;
  for (int k = 0; k < n; ++k) {
    SyntheticStack(first + uint64_t(k), depth, &stack);
    table.Add(stack, lockprof::agent::EventTags{}, nullptr, 1, 1000);
  }
}

}  // namespace bench
