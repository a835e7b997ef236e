#include "lockprof/primitives/interpose/loaded_file.h"

#include <elf.h>
#include <link.h>

#include <cstdint>
#include <cstring>
#include <string_view>

namespace lockprof::interpose {
namespace {

constexpr size_t kPage = 4096;

// The descriptor of the first NT_GNU_BUILD_ID note in [notes, notes + size),
// whose entries are aligned to `align` bytes; empty if none.
std::string_view BuildIdIn(const unsigned char* notes, size_t size, size_t align) {
  const auto up = [align](size_t n) { return (n + align - 1) & ~(align - 1); };
  size_t at = 0;
  while (size - at >= sizeof(ElfW(Nhdr))) {
    ElfW(Nhdr) nh;
    std::memcpy(&nh, notes + at, sizeof nh);
    const size_t name_at = at + sizeof nh;
    const size_t desc_at = name_at + up(nh.n_namesz);
    if (nh.n_namesz > size || nh.n_descsz > size || desc_at > size ||
        nh.n_descsz > size - desc_at) {
      break;
    }
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
        std::memcmp(notes + name_at, "GNU", 4) == 0) {
      return {reinterpret_cast<const char*>(notes + desc_at), nh.n_descsz};
    }
    at = desc_at + up(nh.n_descsz);
  }
  return {};
}

size_t NoteAlign(const ElfW(Phdr) & ph) { return ph.p_align == 8 ? 8 : 4; }

// The image's build ID: its program headers lie in its first page, and a
// note segment counts only if a readable loaded segment covers it.
std::string_view ImageBuildId(const ElfW(Ehdr) & eh, const ElfW(Phdr) * ph, size_t bias) {
  for (int i = 0; i < eh.e_phnum; ++i) {
    if (ph[i].p_type != PT_NOTE) continue;
    const uintptr_t start = ph[i].p_vaddr;
    const uintptr_t size = ph[i].p_memsz;
    bool mapped = false;
    for (int k = 0; k < eh.e_phnum && !mapped; ++k) {
      mapped = ph[k].p_type == PT_LOAD && (ph[k].p_flags & PF_R) != 0 && start >= ph[k].p_vaddr &&
               size <= ph[k].p_filesz && start - ph[k].p_vaddr <= ph[k].p_filesz - size;
    }
    if (!mapped) continue;
    const auto* notes = reinterpret_cast<const unsigned char*>(bias + start);
    if (std::string_view id = BuildIdIn(notes, size, NoteAlign(ph[i])); !id.empty()) return id;
  }
  return {};
}

std::string_view FileBuildId(const unsigned char* file, size_t size, const ElfW(Ehdr) & eh,
                             const ElfW(Phdr) * ph) {
  for (int i = 0; i < eh.e_phnum; ++i) {
    if (ph[i].p_type != PT_NOTE || ph[i].p_offset > size ||
        ph[i].p_filesz > size - ph[i].p_offset) {
      continue;
    }
    std::string_view id = BuildIdIn(file + ph[i].p_offset, ph[i].p_filesz, NoteAlign(ph[i]));
    if (!id.empty()) return id;
  }
  return {};
}

}  // namespace

bool FileMatchesImage(const unsigned char* file, size_t size, const void* image, size_t bias) {
  const auto* mem = static_cast<const unsigned char*>(image);
  ElfW(Ehdr) in_mem;
  std::memcpy(&in_mem, mem, sizeof in_mem);
  const size_t headers = in_mem.e_phoff + size_t(in_mem.e_phnum) * sizeof(ElfW(Phdr));
  if (std::memcmp(in_mem.e_ident, ELFMAG, SELFMAG) != 0 ||
      in_mem.e_phentsize != sizeof(ElfW(Phdr)) || in_mem.e_phoff > kPage || headers > kPage) {
    return true;  // Not checkable: the image does not start with its header.
  }
  if (size < headers || std::memcmp(file, mem, sizeof in_mem) != 0) return false;
  const auto* mem_ph = reinterpret_cast<const ElfW(Phdr)*>(mem + in_mem.e_phoff);
  const auto* file_ph = reinterpret_cast<const ElfW(Phdr)*>(file + in_mem.e_phoff);
  const std::string_view mem_id = ImageBuildId(in_mem, mem_ph, bias);
  if (!mem_id.empty()) return mem_id == FileBuildId(file, size, in_mem, file_ph);
  return std::memcmp(mem_ph, file_ph, headers - in_mem.e_phoff) == 0;
}

}  // namespace lockprof::interpose
