// Go's /debug/pprof/symbol and /debug/pprof/cmdline.
//
// symbol is the protocol `go tool pprof` uses to name the addresses of a
// profile that carries none (a ?debug=1 text profile, or one written
// without names): pprof POSTs "0x<addr>+0x<addr>+..." to the profile URL's
// "../symbol" and reads back one "0x<addr> <function>" line per address it
// knows.
#ifndef LOCKPROF_SERVER_HANDLERS_SYMBOL_HANDLERS_H_
#define LOCKPROF_SERVER_HANDLERS_SYMBOL_HANDLERS_H_

#include <cstddef>

#include "lockprof/server/handlers/http_types.h"

namespace lockprof::server {

// As Go's pprof.Symbol: "num_symbols: 1\n", then, for each '+'-separated
// address in the POST body (any other method: the raw query string) that
// parses as an unsigned integer (0x hex, 0 octal or decimal, as Go's
// ParseUint(s, 0, 64)) and falls in a known function, "%#x <name>\n".
// Addresses are taken as given (pprof sends return address - 1). The name
// is the innermost function at that address that is not lockprof's own
// (as the profiles show it), demangled, without parameters. Symbolization is
// cached for the life of the process.
//
// Memory: an answer holds at most kMaxSymbolAnswer bytes (a request whose
// answer would be longer gets 413: a 1 MiB body repeating one address of a
// long-named function was answered with 31 MB), and at most
// kMaxSymbolAnswers are built at once (more get 503 with Retry-After): 40
// such requests at once took a server to 1.27 GB. pprof sends one request
// per profile, its addresses each once: tens of KiB of answer.
inline constexpr size_t kMaxSymbolAnswer = size_t{16} << 20;
inline constexpr int kMaxSymbolAnswers = 2;
Response HandleSymbol(const Request& request);

// As Go's pprof.Cmdline: the program's arguments, NUL-separated.
Response HandleCmdline();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_SYMBOL_HANDLERS_H_
