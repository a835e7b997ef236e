// lockprof::Atomic<T>: std::atomic<T> with a profiled compare-and-swap loop.
//
// Replacing a lock with a CAS loop moves contention, it does not remove it:
// under contention a CAS loop spins, and no lock profile shows it. Atomic<T>
// has std::atomic<T>'s operations and adds Update(fn), a CAS loop that counts
// its failed attempts and the time spent retrying, and samples both into the
// "cas" profile (/debug/pprof/cas), charged to the function running the loop.
//
//   lockprof::Atomic<int64_t> high_water{"stats.high_water"};
//   high_water.Update([&](int64_t old) { return std::max(old, latency); });
//
//   $ go tool pprof -sample_index=delay -top http://127.0.0.1:6060/debug/pprof/cas
//
// When to use it: for a value updated by read-modify-write that has no single
// instruction (a maximum, a bit-packed state word, a lock-free stack head),
// where a lock would otherwise be used. Plain counters want fetch_add (one
// instruction that never retries) or, when many threads increment, a
// lockprof::ShardedCounter. Values too big to be lock-free want a
// lockprof::CowPtr.
//
// The "cas" profile. Sample types retries/count (failed compare-exchanges,
// spurious failures included) and delay/nanoseconds (from the first failed
// attempt to the successful one). It is sampled like the mutex profile: about
// 1 in SetMutexProfileFraction() loops that retried is kept and scaled by the
// fraction (see sampling.h), so totals are unbiased. Each sample carries the
// label lock="<name>" when the Atomic is named. Only Update is profiled: the
// other operations are single instructions or single attempts, and a loop the
// caller writes around compare_exchange_weak is invisible to lockprof.
//
// Cost. Update's first attempt is inlined into the caller: a load, fn, and one
// compare_exchange_weak, the same as a hand-written loop. Only a failed
// attempt leaves the inline path; it then reads the clock twice (when the CAS
// profile is on) and, for a sampled loop, captures the stack after the loop
// succeeded. Every other operation is exactly std::atomic<T>'s. Not there:
// the volatile-qualified overloads, and C++20's additions (wait, notify_one,
// notify_all, fetch_add on floating-point types).
//
// Thread-safety: every operation is atomic, as for std::atomic<T>. Not
// copyable or movable.
#ifndef LOCKPROF_PRIMITIVES_ATOMIC_H_
#define LOCKPROF_PRIMITIVES_ATOMIC_H_

#include <atomic>
#include <cstddef>
#include <type_traits>

#include "absl/base/attributes.h"
#include "lockprof/primitives/internal/cas_loop.h"
#include "lockprof/primitives/lock_name.h"

namespace lockprof {

template <typename T>
class Atomic {
  static_assert(std::is_trivially_copyable_v<T>,
                "lockprof::Atomic<T> needs a trivially copyable T");

  // fetch_add & co. exist for integers (not bool) and object pointers, as
  // for std::atomic.
  template <typename U>
  static constexpr bool kIntegral = std::is_integral_v<U> && !std::is_same_v<U, bool>;
  template <typename U>
  static constexpr bool kObjectPointer =
      std::is_pointer_v<U>&& std::is_object_v<std::remove_pointer_t<U>>;
  template <typename U>
  using Difference = std::conditional_t<kIntegral<U>, U, std::ptrdiff_t>;
  template <typename U>
  using IfArithmetic = std::enable_if_t<kIntegral<U> || kObjectPointer<U>, int>;
  template <typename U>
  using IfIntegral = std::enable_if_t<kIntegral<U>, int>;
  template <typename U, size_t N>
  static constexpr bool kNameOnly =
      std::is_arithmetic_v<U> || std::is_enum_v<U> ||
      ((std::is_class_v<U> || std::is_union_v<U>)&&!std::is_constructible_v<U, const char (&)[N]>);

 public:
  using value_type = T;
  // As std::atomic's for integers and pointers (the type fetch_add takes).
  using difference_type = Difference<T>;
  static constexpr bool is_always_lock_free = std::atomic<T>::is_always_lock_free;

  // Value-initialised (0 for numbers, nullptr for pointers).
  constexpr Atomic() noexcept : value_(T()) {}
  constexpr Atomic(T desired) noexcept : value_(desired) {}  // NOLINT: as std::atomic
  // `name` (a string literal or const array: see lock_name.h) labels this
  // value's samples lock="<name>", so that `go tool pprof
  // -tagfocus=lock=<name>` isolates them. Not copied.
  constexpr Atomic(LockName name, T desired) noexcept : value_(desired), name_(name.get()) {}
  // The name alone, for types that a string literal is not a value of:
  // numbers (bool included: a literal must name an Atomic<bool>, not convert
  // to true), enums, and classes that cannot be made from one. A pointer or a
  // std::string_view, say, takes its one argument as its value, as
  // std::atomic does. An array, not a LockName, for that reason.
  template <size_t N, typename U = T, std::enable_if_t<kNameOnly<U, N>, int> = 0>
  explicit constexpr Atomic(const char (&name)[N]) noexcept : value_(T()), name_(name) {}
  template <size_t N, typename U = T, std::enable_if_t<kNameOnly<U, N>, int> = 0>
  explicit Atomic(char (&name)[N]) = delete;  // Mutable: see lock_name.h.
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  // value = fn(value), atomically: loads the value, computes fn(old) and
  // publishes it with compare_exchange_weak, retrying with the fresh value
  // until no other thread changed it in between. Returns the value replaced
  // (as fetch_add does). `fn` is called as fn(const T&) -> T, once per
  // attempt, so it must be free of side effects that must not repeat, and
  // should be short: every thread retrying is burning CPU. `order` is the
  // success order; loads that feed fn use its acquire part, so fn may
  // dereference a pointer it is given.
  template <typename F>
  ABSL_ATTRIBUTE_ALWAYS_INLINE T Update(F fn, std::memory_order order = std::memory_order_seq_cst) {
    return internal::CasUpdate(value_, fn, order, name_);
  }

  T load(std::memory_order order = std::memory_order_seq_cst) const noexcept {
    return value_.load(order);
  }
  void store(T desired, std::memory_order order = std::memory_order_seq_cst) noexcept {
    value_.store(desired, order);
  }
  operator T() const noexcept { return load(); }  // NOLINT: as std::atomic
  T operator=(T desired) noexcept {
    store(desired);
    return desired;
  }
  T exchange(T desired, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.exchange(desired, order);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure) noexcept {
    return value_.compare_exchange_weak(expected, desired, success, failure);
  }
  bool compare_exchange_weak(T& expected, T desired,
                             std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.compare_exchange_weak(expected, desired, order);
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) noexcept {
    return value_.compare_exchange_strong(expected, desired, success, failure);
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.compare_exchange_strong(expected, desired, order);
  }
  bool is_lock_free() const noexcept { return value_.is_lock_free(); }

  // Integers (not bool) and object pointers.
  template <typename U = T, IfArithmetic<U> = 0>
  T fetch_add(Difference<U> arg, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.fetch_add(arg, order);
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T fetch_sub(Difference<U> arg, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.fetch_sub(arg, order);
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T operator+=(Difference<U> arg) noexcept {
    return value_ += arg;
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T operator-=(Difference<U> arg) noexcept {
    return value_ -= arg;
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T operator++() noexcept {
    return ++value_;
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T operator++(int) noexcept {
    return value_++;
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T operator--() noexcept {
    return --value_;
  }
  template <typename U = T, IfArithmetic<U> = 0>
  T operator--(int) noexcept {
    return value_--;
  }

  // Integers only.
  template <typename U = T, IfIntegral<U> = 0>
  T fetch_and(U arg, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.fetch_and(arg, order);
  }
  template <typename U = T, IfIntegral<U> = 0>
  T fetch_or(U arg, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.fetch_or(arg, order);
  }
  template <typename U = T, IfIntegral<U> = 0>
  T fetch_xor(U arg, std::memory_order order = std::memory_order_seq_cst) noexcept {
    return value_.fetch_xor(arg, order);
  }
  template <typename U = T, IfIntegral<U> = 0>
  T operator&=(U arg) noexcept {
    return value_ &= arg;
  }
  template <typename U = T, IfIntegral<U> = 0>
  T operator|=(U arg) noexcept {
    return value_ |= arg;
  }
  template <typename U = T, IfIntegral<U> = 0>
  T operator^=(U arg) noexcept {
    return value_ ^= arg;
  }

  const char* name() const { return name_; }

 private:
  std::atomic<T> value_;
  const char* name_ = nullptr;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_ATOMIC_H_
