// Where a frame's caller is: the x86-64 unwind rule at a return address,
// read from the call-frame information (.eh_frame) of the object that holds
// it, and cached.
//
// libgcc's _Unwind_Backtrace reads the same tables, but for every frame of
// every stack it finds the FDE, decodes its CIE and runs both programs, and
// restores all sixteen registers: a microsecond or more per stack. The
// stacks a profiler captures run through the same few hundred return
// addresses again and again, and in compiled x86-64 code the rule at one
// needs three numbers: the canonical frame address (CFA) is rsp or rbp plus
// an offset, the return address is saved at CFA + an offset, and rbp is
// either untouched or saved at CFA + an offset. FindFrameRule computes them
// once per return address; cfi_unwind.cc walks a stack with them.
//
// Anything else (a CFA given by an expression, a signal frame, a rule that
// needs another register, 64-bit DWARF, an opcode this reader does not
// know) is not a rule here: the caller then unwinds that stack with libgcc.
#ifndef LOCKPROF_AGENT_RECORD_FRAME_RULES_H_
#define LOCKPROF_AGENT_RECORD_FRAME_RULES_H_

#include <cstdint>

namespace lockprof::agent {

struct FrameRule {
  enum Kind : uint8_t {
    kUnwind,   // The caller is found by the offsets below.
    kEnd,      // The outermost frame: its return address is undefined.
    kNoTable,  // Its object has no FDE for it: the stack ends here, as libgcc's.
    kUnknown,  // A rule this reader does not handle: unwind with libgcc.
  };
  Kind kind = kUnknown;
  bool cfa_from_rbp = false;  // CFA = (cfa_from_rbp ? rbp : rsp) + cfa_offset.
  bool rbp_saved = false;     // The caller's rbp is at CFA + rbp_offset, else rbp.
  int32_t cfa_offset = 0;
  int32_t ra_offset = 0;  // The return address is at CFA + ra_offset.
  int32_t rbp_offset = 0;
};

// The rule for the frame whose return address (a call's next instruction)
// is `return_address`: as libgcc's, the state just before it. Cached in a
// fixed table shared by all threads, each entry with the address of its
// object's unwind table (found by _dl_find_object on every call, so that a
// library dlclose()d and another loaded at its address do not share rules,
// unless their unwind tables lie at the same address too: a rebuilt library
// of the same layout, reloaded at the same base, may get wrong stacks, whose
// every read stays inside the stack); a miss
// costs libgcc's FDE lookup and the decoding. Never allocates; takes no
// lock but libgcc's own, and that only for objects registered by hand.
FrameRule FindFrameRule(uintptr_t return_address);

// Decodes, without the cache: for tests.
FrameRule DecodeFrameRule(uintptr_t return_address);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_FRAME_RULES_H_
