// lockprof::LockName: the name a lockprof primitive is given, which labels
// its samples lock="<name>" in every profile and metric.
//
//   lockprof::Mutex mu{"cache"};              // a string literal: fine
//   constexpr char kName[] = "cache";
//   lockprof::Mutex mu2{kName};               // a const array: fine
//   lockprof::Mutex bad{name.c_str()};        // does not compile
//
// Only a const character array converts to a LockName: a string literal, or
// a const array. A `const char*` (a std::string's c_str(), a pointer into a
// buffer) does not, and neither does a mutable array: either may be freed or
// rewritten while the lock still uses the name, and the name is read long
// after the constructor ran (by every recorded event, by the per-lock
// metrics). This is decided at compile time, so the constructors stay
// constexpr and a global lock needs no dynamic initialisation.
//
// Why not copy names instead (into an interned table that never frees
// them)? A copy must be made when the lock is constructed, before the
// caller's string can go away: that allocates and takes a lock, which would
// make every lockprof primitive's construction non-constexpr (global locks
// would need dynamic initialisation, racing other files' static
// initialisers) and make a name-interning table that grows with every
// distinct name a program ever forms. Names are meant to be a small, fixed
// set of literals, like Go's mutex profile labels; the type system can say
// so.
//
// What the type cannot rule out: a const array with automatic storage that
// dies before the lock (`const char local[] = "x";` in a function whose
// lock outlives it). Literals and namespace-scope arrays are the intended
// use. A const array member of the object that holds the lock, dying with
// it, is fine: an unlock that records after its release (when the next
// holder may already have destroyed both) reads a copy it took before. A
// name in a library that is dlclose()d is fine: lockprof copies what it
// keeps (profile and metrics tables) while the lock is in use, and never
// reads the name after the library is gone (see RELIABILITY.md, dlopen).
//
// Cost: none at run time; a LockName is a pointer.
#ifndef LOCKPROF_PRIMITIVES_LOCK_NAME_H_
#define LOCKPROF_PRIMITIVES_LOCK_NAME_H_

#include <cstddef>

namespace lockprof {

class LockName {
 public:
  // No name: the lock's samples carry no lock label (lock="(unnamed)" in
  // metrics).
  constexpr LockName() = default;
  constexpr LockName(std::nullptr_t) {}  // NOLINT: implicit, as for pointers
  // A string literal or another const char array.
  template <size_t N>
  constexpr LockName(const char (&name)[N]) : name_(name) {}  // NOLINT: implicit by design
  // A mutable array may be rewritten or freed while the lock uses it.
  template <size_t N>
  LockName(char (&name)[N]) = delete;

  // The name, or nullptr.
  constexpr const char* get() const { return name_; }

 private:
  const char* name_ = nullptr;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_LOCK_NAME_H_
