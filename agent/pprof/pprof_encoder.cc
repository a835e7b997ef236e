#include "lockprof/agent/pprof/pprof_encoder.h"

#include <zlib.h>

#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "lockprof/agent/base/utf8.h"

// The preload library compiles this file again against a renamed copy of
// profile.proto (primitives/interpose/CMakeLists.txt says why).
#ifdef LOCKPROF_PPROF_PB_HEADER
#include LOCKPROF_PPROF_PB_HEADER
#else
#include "profile.pb.h"
#endif

namespace lockprof::agent {

namespace {

#ifdef LOCKPROF_PPROF_PB_NAMESPACE
namespace pb = LOCKPROF_PPROF_PB_NAMESPACE;
#else
namespace pb = perftools::profiles;
#endif

// Interns strings, functions and mappings into a pb::Profile, keeping every
// id non-zero and unique as pprof's CheckValid demands.
class ProfileWriter {
 public:
  explicit ProfileWriter(pb::Profile* p) : p_(p) { Str(""); }  // string_table[0] = "".

  int64_t Str(const std::string& s) {
    // profile.proto's strings are proto3 `string`s: UTF-8, or parsers
    // reject the profile (and libprotobuf logs each one it serializes).
    if (!IsValidUtf8(s)) return Str(ValidUtf8(s));
    auto [it, inserted] = strings_.emplace(s, int64_t(strings_.size()));
    if (inserted) p_->add_string_table(s);
    return it->second;
  }

  uint64_t Function(const SourceFrame& f) {
    auto key = std::make_tuple(f.function, f.system_name, f.file, f.start_line);
    auto [it, inserted] = functions_.emplace(key, uint64_t(functions_.size() + 1));
    if (inserted) {
      pb::Function* fn = p_->add_function();
      fn->set_id(it->second);
      fn->set_name(Str(f.function));
      fn->set_system_name(Str(f.system_name.empty() ? f.function : f.system_name));
      fn->set_filename(Str(f.file));
      fn->set_start_line(f.start_line);
    }
    return it->second;
  }

  void ValueType(pb::ValueType* vt, const char* type, const char* unit) {
    vt->set_type(Str(type));
    vt->set_unit(Str(unit));
  }

 private:
  pb::Profile* p_;
  std::unordered_map<std::string, int64_t> strings_;
  std::map<std::tuple<std::string, std::string, std::string, int>, uint64_t> functions_;
};

// What the symbolizer found for one mapping's locations.
struct MappingSymbols {
  bool located = false;   // Some location lies in the mapping.
  bool all_named = true;  // Every one of them has a function name.
  bool lines = false;     // Some frame has a line number.
  bool inlined = false;   // Some location has inlined frames.
};

std::vector<MappingSymbols> SymbolsByMapping(const ResolvedProfile& rp) {
  std::vector<MappingSymbols> out(rp.mappings.size());
  for (const ResolvedLocation& loc : rp.locations) {
    if (loc.mapping_index < 0 || size_t(loc.mapping_index) >= out.size()) continue;
    MappingSymbols& m = out[size_t(loc.mapping_index)];
    m.located = true;
    m.all_named &= !loc.frames.empty();
    for (const SourceFrame& f : loc.frames) m.lines |= f.line > 0;
    m.inlined |= loc.frames.size() > 1;
  }
  return out;
}

}  // namespace

std::string EncodePprof(const ResolvedProfile& rp) {
  pb::Profile p;
  ProfileWriter w(&p);
  for (const auto& vt : rp.info->value_types) w.ValueType(p.add_sample_type(), vt[0], vt[1]);
  w.ValueType(p.mutable_period_type(), rp.info->value_types[0][0], rp.info->value_types[0][1]);
  p.set_period(1);
  p.set_time_nanos(rp.time_nanos);
  if (rp.duration_nanos > 0) p.set_duration_nanos(rp.duration_nanos);

  // Mappings: ids are index + 1. A mapping claims functions only when
  // every location in it was named, as Go's runtime/pprof does: pprof and
  // Pyroscope never symbolize a mapping that claims them, so a stripped
  // binary's mapping must not, and then `go tool pprof <unstripped binary>`
  // or an uploaded debug file names its addresses by the build id.
  const std::vector<MappingSymbols> symbols = SymbolsByMapping(rp);
  for (size_t i = 0; i < rp.mappings.size(); ++i) {
    const Mapping& m = rp.mappings[i];
    pb::Mapping* pm = p.add_mapping();
    pm->set_id(i + 1);
    pm->set_memory_start(m.start);
    pm->set_memory_limit(m.limit);
    pm->set_file_offset(m.file_offset);
    pm->set_filename(w.Str(m.path));
    pm->set_build_id(w.Str(m.build_id));
    const bool named = symbols[i].located && symbols[i].all_named;
    pm->set_has_functions(named);
    pm->set_has_filenames(named && symbols[i].lines);
    pm->set_has_line_numbers(named && symbols[i].lines);
    pm->set_has_inline_frames(named && symbols[i].inlined);
  }

  for (size_t i = 0; i < rp.locations.size(); ++i) {
    const ResolvedLocation& loc = rp.locations[i];
    pb::Location* pl = p.add_location();
    pl->set_id(i + 1);
    if (loc.mapping_index >= 0) pl->set_mapping_id(uint64_t(loc.mapping_index) + 1);
    pl->set_address(loc.address);
    for (const SourceFrame& f : loc.frames) {
      pb::Line* line = pl->add_line();
      line->set_function_id(w.Function(f));
      line->set_line(f.line);
    }
  }

  for (const ResolvedSample& s : rp.samples) {
    pb::Sample* ps = p.add_sample();
    for (int loc : s.locations) ps->add_location_id(uint64_t(loc) + 1);
    ps->add_value(s.values[0]);
    ps->add_value(s.values[1]);
    for (const auto& [k, v] : s.str_labels) {
      pb::Label* l = ps->add_label();
      l->set_key(w.Str(k));
      l->set_str(w.Str(v));
    }
    for (const NumLabel& n : s.num_labels) {
      pb::Label* l = ps->add_label();
      l->set_key(w.Str(n.key));
      l->set_num(n.num);
      if (n.unit != nullptr) l->set_num_unit(w.Str(n.unit));
    }
  }
  return p.SerializeAsString();
}

std::string Gzip(const std::string& data) {
  z_stream zs{};
  // windowBits 15 + 16: gzip header and trailer rather than zlib's.
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out;
  out.resize(deflateBound(&zs, data.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = uInt(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  int r = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return r == Z_STREAM_END ? out : std::string();
}

}  // namespace lockprof::agent
