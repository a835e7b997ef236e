// Whether a file on disk is the object a process has loaded from its path.
//
// A loaded object's path can name another file by the time lockprof reads
// it: a package upgrade renames a new library over the old one while the
// service runs, or the object was loaded by a relative path and the
// process has changed directory since. Symbols read from that file would
// name the wrong locks. The check compares the GNU build ID of the image
// in memory with the file's; objects built without one are compared by
// their ELF and program headers.
//
// Reads only the object's first page and its note segments, which every
// loaded object keeps mapped readable; takes no lock and never allocates.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_LOADED_FILE_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_LOADED_FILE_H_

#include <cstddef>

namespace lockprof::interpose {

// `file`, `size`: the file's bytes (mapped). `image`: the start of the
// object's mapping in memory (dl_find_object's dlfo_map_start), `bias` its
// load bias (link_map's l_addr). True if the file is the loaded object, or
// if the image cannot be checked (its first page is not its ELF header).
bool FileMatchesImage(const unsigned char* file, size_t size, const void* image, size_t bias);

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_LOADED_FILE_H_
