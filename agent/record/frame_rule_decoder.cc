// DecodeFrameRule: an FDE and its CIE read, their CFA programs run up to a
// return address (DWARF 5, section 6.4; the .eh_frame format of the LSB).
#include "lockprof/agent/record/frame_rules.h"

#include <cstdint>
#include <cstring>
#include <type_traits>

// libgcc's FDE lookup (exported by libgcc_s since GCC 3.0, declared only in
// its private unwind-dw2-fde.h): the FDE whose range holds `pc`, or null;
// `bases->func` is then the start of that range.
struct LockprofDwarfEhBases {
  void* tbase;
  void* dbase;
  void* func;
};
extern "C" const void* _Unwind_Find_FDE(void* pc, LockprofDwarfEhBases* bases);

namespace lockprof::agent {
namespace {

// DWARF register numbers of x86-64 (System V psABI, figure 3.36).
constexpr uint64_t kRbp = 6;
constexpr uint64_t kRsp = 7;
constexpr uint64_t kReturnAddress = 16;

// Reads the bytes [p, end) of an FDE or CIE; any read past `end` fails it.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  uint8_t U8() {
    if (p >= end) return Fail();
    return *p++;
  }
  uint64_t Fixed(int n) {
    if (end - p < n) return Fail();
    uint64_t v = 0;
    std::memcpy(&v, p, size_t(n));  // Little-endian, as the target.
    p += n;
    return v;
  }
  uint64_t Uleb() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = U8();
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return Fail();
  }
  int64_t Sleb() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = U8();
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        if (shift < 57 && (b & 0x40)) v |= ~uint64_t(0) << (shift + 7);  // Sign-extended.
        return int64_t(v);
      }
    }
    return Fail();
  }
  void Skip(uint64_t n) {
    if (uint64_t(end - p) < n) {
      Fail();
    } else {
      p += n;
    }
  }
  // Skips a pointer in DW_EH_PE encoding `enc` (its low four bits give the size).
  void SkipEncoded(uint8_t enc) {
    switch (enc & 0x0f) {
      case 0x00:
        Skip(8);
        break;  // absptr
      case 0x01:
        Uleb();
        break;
      case 0x02:
      case 0x0a:
        Skip(2);
        break;
      case 0x03:
      case 0x0b:
        Skip(4);
        break;
      case 0x04:
      case 0x0c:
        Skip(8);
        break;
      case 0x09:
        Sleb();
        break;
      default:
        Fail();
    }
  }
  uint8_t Fail() {
    ok = false;
    p = end;
    return 0;
  }
};

// The registers' rules while a CFA program runs.
struct State {
  uint64_t cfa_reg = kRsp;
  int64_t cfa_offset = 0;
  bool ra_saved = false, ra_undefined = false;
  int64_t ra_offset = 0;
  bool rbp_saved = false;
  int64_t rbp_offset = 0;
};

struct Program {
  int64_t code_align = 1;
  int64_t data_align = 1;
  uint64_t ra_reg = kReturnAddress;
};

// Sets register `reg`'s rule: saved at CFA + `offset` (saved), or unchanged.
void SetSaved(State* s, const Program& prog, uint64_t reg, bool saved, int64_t offset) {
  if (reg == prog.ra_reg) {
    s->ra_saved = saved;
    s->ra_undefined = false;
    s->ra_offset = offset;
  } else if (reg == kRbp) {
    s->rbp_saved = saved;
    s->rbp_offset = offset;
  }
}

// Runs the CFA program in `r` from address `loc` while the location is
// below `target`. `initial`: the state after the CIE's program, for
// DW_CFA_restore. False on anything this reader does not handle.
bool Run(Reader r, const Program& prog, const State& initial, uintptr_t loc, uintptr_t target,
         State* s) {
  constexpr int kMaxRemembered = 8;
  State remembered[kMaxRemembered];
  int depth = 0;
  auto restore = [&](uint64_t reg) {
    if (reg == prog.ra_reg) {
      s->ra_saved = initial.ra_saved;
      s->ra_undefined = initial.ra_undefined;
      s->ra_offset = initial.ra_offset;
    } else if (reg == kRbp) {
      s->rbp_saved = initial.rbp_saved;
      s->rbp_offset = initial.rbp_offset;
    }
  };
  // Offsets past 32 bits (never in a real table) fail the program, so that
  // scaling them by the alignment factors (at most 64) cannot overflow.
  auto Small = [&r](auto v) -> int64_t {
    const int64_t x = int64_t(v);
    if (x > INT32_MAX || x < INT32_MIN || (std::is_unsigned_v<decltype(v)> && v > INT32_MAX)) {
      r.Fail();
      return 0;
    }
    return x;
  };
  // A register this reader does not follow may take any rule; rbp, rsp and
  // the return address must keep one it knows.
  auto followed = [&](uint64_t reg) { return reg == kRbp || reg == kRsp || reg == prog.ra_reg; };
  while (r.ok && r.p < r.end && loc < target) {
    const uint8_t op = r.U8();
    const uint8_t low = op & 0x3f;
    switch (op >> 6) {
      case 1:
        loc += low * prog.code_align;
        continue;  // DW_CFA_advance_loc
      case 2:
        SetSaved(s, prog, low, true, Small(r.Uleb()) * prog.data_align);
        continue;
      case 3:
        restore(low);
        continue;
      default:
        break;
    }
    switch (op) {
      case 0x00:
        break;  // nop
      case 0x02:
        loc += r.Fixed(1) * prog.code_align;
        break;
      case 0x03:
        loc += r.Fixed(2) * prog.code_align;
        break;
      case 0x04:
        loc += r.Fixed(4) * prog.code_align;
        break;
      case 0x05: {  // offset_extended
        const uint64_t reg = r.Uleb();
        SetSaved(s, prog, reg, true, Small(r.Uleb()) * prog.data_align);
        break;
      }
      case 0x06:
        restore(r.Uleb());
        break;
      case 0x07: {  // undefined
        const uint64_t reg = r.Uleb();
        if (reg == prog.ra_reg) {
          s->ra_undefined = true;
        } else if (reg == kRbp || reg == kRsp) {
          return false;
        }
        break;
      }
      case 0x08:
        SetSaved(s, prog, r.Uleb(), false, 0);
        break;      // same_value
      case 0x09: {  // register
        const uint64_t reg = r.Uleb();
        r.Uleb();
        if (followed(reg)) return false;
        break;
      }
      case 0x0a:
        if (depth == kMaxRemembered) return false;
        remembered[depth++] = *s;
        break;
      case 0x0b:
        if (depth == 0) return false;
        *s = remembered[--depth];
        break;
      case 0x0c:  // def_cfa
        s->cfa_reg = r.Uleb();
        s->cfa_offset = Small(r.Uleb());
        break;
      case 0x0d:
        s->cfa_reg = r.Uleb();
        break;
      case 0x0e:
        s->cfa_offset = Small(r.Uleb());
        break;
      case 0x11: {  // offset_extended_sf
        const uint64_t reg = r.Uleb();
        SetSaved(s, prog, reg, true, Small(r.Sleb()) * prog.data_align);
        break;
      }
      case 0x12:  // def_cfa_sf
        s->cfa_reg = r.Uleb();
        s->cfa_offset = Small(r.Sleb()) * prog.data_align;
        break;
      case 0x13:
        s->cfa_offset = Small(r.Sleb()) * prog.data_align;
        break;
      case 0x14:    // val_offset
      case 0x15: {  // val_offset_sf
        const uint64_t reg = r.Uleb();
        op == 0x14 ? void(r.Uleb()) : void(r.Sleb());
        if (followed(reg)) return false;
        break;
      }
      case 0x10:    // expression
      case 0x16: {  // val_expression
        const uint64_t reg = r.Uleb();
        r.Skip(r.Uleb());
        if (followed(reg)) return false;
        break;
      }
      case 0x2e:
        r.Uleb();
        break;  // GNU_args_size
      default:
        return false;  // set_loc, def_cfa_expression, vendor ops
    }
  }
  return r.ok && (s->cfa_reg == kRsp || s->cfa_reg == kRbp);
}

// Fits a decoded state into a rule, or says it cannot.
FrameRule ToRule(const State& s) {
  FrameRule rule;
  if (s.ra_undefined) {
    rule.kind = FrameRule::kEnd;
    return rule;
  }
  auto fits = [](int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; };
  if (!s.ra_saved || !fits(s.cfa_offset) || !fits(s.ra_offset) || !fits(s.rbp_offset)) {
    return rule;  // kUnknown
  }
  rule.kind = FrameRule::kUnwind;
  rule.cfa_from_rbp = s.cfa_reg == kRbp;
  rule.rbp_saved = s.rbp_saved;
  rule.cfa_offset = int32_t(s.cfa_offset);
  rule.ra_offset = int32_t(s.ra_offset);
  rule.rbp_offset = int32_t(s.rbp_offset);
  return rule;
}

}  // namespace

FrameRule DecodeFrameRule(uintptr_t return_address) {
  FrameRule unknown;
  LockprofDwarfEhBases bases{};
  // As libgcc: the call is the instruction before the return address.
  const auto* fde = static_cast<const uint8_t*>(
      _Unwind_Find_FDE(reinterpret_cast<void*>(return_address - 1), &bases));
  if (fde == nullptr) {
    FrameRule none;
    none.kind = FrameRule::kNoTable;
    return none;
  }
  uint32_t fde_length, cie_delta;
  std::memcpy(&fde_length, fde, 4);
  std::memcpy(&cie_delta, fde + 4, 4);
  if (fde_length == 0xffffffffu || fde_length < 8) return unknown;  // 64-bit DWARF
  const uint8_t* cie = fde + 4 - cie_delta;
  uint32_t cie_length;
  std::memcpy(&cie_length, cie, 4);
  if (cie_length == 0xffffffffu || cie_length < 8) return unknown;

  Reader c{cie + 8, cie + 4 + cie_length};  // After the length and the CIE id.
  const uint8_t version = c.U8();
  const auto* aug = reinterpret_cast<const char*>(c.p);
  const size_t aug_len = strnlen(aug, size_t(c.end - c.p));
  c.Skip(aug_len + 1);
  Program prog;
  prog.code_align = int64_t(c.Uleb());
  prog.data_align = c.Sleb();
  prog.ra_reg = version == 1 ? c.U8() : c.Uleb();
  if (prog.code_align < 1 || prog.code_align > 64 || prog.data_align < -64 ||
      prog.data_align > 64) {
    return unknown;
  }
  uint8_t fde_encoding = 0;  // absptr
  bool has_aug_data = false;
  if (aug_len > 0) {
    if (aug[0] != 'z') return unknown;
    has_aug_data = true;
    const uint64_t n = c.Uleb();
    if (!c.ok || uint64_t(c.end - c.p) < n) return unknown;
    Reader data{c.p, c.p + n};
    c.Skip(n);
    for (size_t i = 1; i < aug_len; ++i) {
      switch (aug[i]) {
        case 'R':
          fde_encoding = data.U8();
          break;
        case 'P':
          data.SkipEncoded(data.U8());
          break;
        case 'L':
          data.U8();
          break;
        default:
          return unknown;  // 'S' (a signal frame) among them
      }
    }
    if (!data.ok) return unknown;
  }
  if (!c.ok || prog.ra_reg != kReturnAddress) return unknown;

  State initial;
  if (!Run(c, prog, initial, 0, 1, &initial)) return unknown;

  Reader f{fde + 8, fde + 4 + fde_length};
  f.SkipEncoded(fde_encoding);         // pc_begin: bases.func has it
  f.SkipEncoded(fde_encoding & 0x0f);  // pc_range: its size, no application
  if (has_aug_data) f.Skip(f.Uleb());
  if (!f.ok) return unknown;
  State s = initial;
  if (!Run(f, prog, initial, reinterpret_cast<uintptr_t>(bases.func), return_address, &s)) {
    return unknown;
  }
  return ToRule(s);
}

}  // namespace lockprof::agent
