#include "lockprof/agent/symbolize/demangle.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace lockprof::agent {
namespace {

// The data names it covers come out as PrettyFunctionName gives them; the
// rest, and a buffer too small, are left to PrettyFunctionName (0).
TEST(DemangleDataNameTest, MatchesPrettyFunctionNameOrDeclines) {
  char buf[64];
  for (const char* symbol :
       {"_ZN2ns5Class3mu_E", "_ZL4g_mu", "_ZN12_GLOBAL__N_110g_stats_muE", "_ZN2ns2ns4g_muE"}) {
    const size_t n = DemangleDataName(symbol, buf, sizeof buf);
    ASSERT_GT(n, 0u) << symbol;
    EXPECT_EQ(std::string(buf, n), PrettyFunctionName(symbol)) << symbol;
  }
  EXPECT_EQ(std::string(buf, DemangleDataName("_ZL4g_mu", buf, sizeof buf)), "g_mu");
  EXPECT_EQ(std::string(buf, DemangleDataName("_ZN12_GLOBAL__N_14g_muE", buf, sizeof buf)),
            "(anonymous namespace)::g_mu");
  for (const char* symbol :
       {"_ZZ4mainE2mu", "_ZN3FooIiE2muE", "_ZNSt6chrono3fooE", "_ZN2ns2mu", "_Z3foov",
        "_ZN2ns3fooEv", "_ZN2ns9toolongE", "g_mu", "_Z", "_ZN99", ""}) {
    EXPECT_EQ(DemangleDataName(symbol, buf, sizeof buf), 0u) << symbol;
  }
  EXPECT_EQ(DemangleDataName("_ZN2ns5Class3mu_E", buf, 8), 0u);  // "ns::Class::mu_" is 14.
}

TEST(PrettyFunctionNameTest, StripsSignatures) {
  EXPECT_EQ(PrettyFunctionName("_ZNK2ns5Class6MethodEi"), "ns::Class::Method");
  EXPECT_EQ(PrettyFunctionName("_ZZ4mainENKUlvE_clEv"), "main::{lambda()#1}::operator()");
  EXPECT_EQ(PrettyFunctionName("_Z3fooIiEvT_.cold"), "foo<int>");
  EXPECT_EQ(PrettyFunctionName("_ZN12_GLOBAL__N_18SomeFuncEi.constprop.0"),
            "(anonymous namespace)::SomeFunc");
  EXPECT_EQ(PrettyFunctionName("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back");
  EXPECT_EQ(PrettyFunctionName("_ZN1AclEv"), "A::operator()");
  EXPECT_EQ(PrettyFunctionName("_ZN1AcvmEv"), "A::operator unsigned long");
  EXPECT_EQ(PrettyFunctionName("_ZN1AltEi"), "A::operator<");
  EXPECT_EQ(PrettyFunctionName("_ZlsRSoRK1A"), "operator<<");
  EXPECT_EQ(PrettyFunctionName("_Znwm"), "operator new");
  EXPECT_EQ(PrettyFunctionName("_ZNKR1A1fEv"), "A::f");
  EXPECT_EQ(PrettyFunctionName("_ZThn8_N1B1fEv"), "B::f");
  EXPECT_EQ(PrettyFunctionName("_ZN1AC2Ev"), "A::A");
  EXPECT_EQ(PrettyFunctionName("_ZN1AD0Ev"), "A::~A");
  EXPECT_EQ(PrettyFunctionName("main"), "main");
  EXPECT_EQ(PrettyFunctionName("helper.constprop.0.isra.0"), "helper");
  EXPECT_EQ(PrettyFunctionName("helper.cold"), "helper");
  EXPECT_EQ(PrettyFunctionName("_GLOBAL__sub_I_foo.cc"), "_GLOBAL__sub_I_foo.cc");
  EXPECT_EQ(PrettyFunctionName("_Zbogus"), "_Zbogus");
  // Returning a pointer or reference to a function or an array: the name is
  // inside the declarator ("void (*ns::get<int>())(int)").
  EXPECT_EQ(PrettyFunctionName("_ZN2ns3getIiEEPFviEv"), "ns::get<int>");
  EXPECT_EQ(PrettyFunctionName("_ZN2ns3rowIiEERA3_iv"), "ns::row<int>");
  EXPECT_EQ(PrettyFunctionName("_ZN2ns5memfnIiEEMNS_1AEFviEv"), "ns::memfn<int>");
}

// f<P<P<...>, ...>, ...>: each level refers back to the one below twice, so
// __cxa_demangle's output doubles with each (a 200-character symbol of
// 25 levels demangles to 142 MB in 2.4 s). Any library in the process may
// bring one, and /debug/pprof/symbol names any address a client sends.
std::string Exponential(int levels) {
  auto seq = [](int i) {
    std::string digits;
    do {
      digits.insert(digits.begin(), "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i % 36]);
      i /= 36;
    } while (i != 0);
    return "S" + digits + "_";
  };
  std::string t = "i";
  for (int n = 1; n <= levels; ++n) {
    t = std::string(n == levels ? "1P" : "S0_") + "I" + t + (n >= 2 ? seq(n - 1) : "i") + "E";
  }
  return "_Z1fI" + t + "EvT_";
}

TEST(PrettyFunctionNameTest, NamesThatWouldDemangleToGigabytesStayBounded) {
  // Small enough to demangle in full.
  EXPECT_EQ(PrettyFunctionName(Exponential(2)), "f<P<P<int, int>, P<int, int> > >");
  // (Not more levels: were the bound to break, this test must fail, not
  // take the machine's memory.)
  for (int levels : {22, 25}) {
    const auto start = std::chrono::steady_clock::now();
    const std::string name = PrettyFunctionName(Exponential(levels));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(name, "f<>") << levels;  // Abseil's bounded demangler's form.
    EXPECT_LT(took, std::chrono::milliseconds(100)) << levels;
  }
}

// A pack of `n` types, and `levels` nested pack expansions, each one's
// pattern naming the one before (a back-reference) and the pack: each level
// multiplies the demangled text by n (4 levels of 16: 18 MB; 6: 4.6 GB).
std::string NestedPackExpansions(int n, int levels) {
  std::string s = "_Z1fIJ" + std::string(size_t(n), 'i') + "EEvDpPFvT_E";
  int seq = 3;  // The substitution of the first expansion's type: S3_.
  for (int level = 0; level < levels; ++level, seq += 4) {
    s += "DpPFvS" + std::string(1, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[seq]) + "_T_E";
  }
  return s;
}

TEST(PrettyFunctionNameTest, NestedPackExpansionsStayBounded) {
  EXPECT_EQ(PrettyFunctionName(NestedPackExpansions(2, 0)), "f<int, int>");
  // The common case, an expansion in the parameters, keeps the whole name.
  EXPECT_EQ(PrettyFunctionName("_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJRKiEEEvN9__gnu_"
                               "cxx17__normal_iteratorIPiS1_EEDpOT_"),
            "std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>");
  // (4 levels, not 6: were the bound to break, this must fail, not take the
  // machine's memory.)
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(PrettyFunctionName(NestedPackExpansions(16, 4)), "f<>");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace lockprof::agent
