#include "lockprof/agent/symbolize/demangle.h"

#include <gtest/gtest.h>

namespace lockprof::agent {
namespace {

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
}

}  // namespace
}  // namespace lockprof::agent
