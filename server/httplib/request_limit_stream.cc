#include "lockprof/server/httplib/request_limit_stream.h"

#include <algorithm>
#include <atomic>

namespace lockprof::server {

namespace {

std::atomic<uint64_t> g_heads_cut{0};
std::atomic<uint64_t> g_bodies_cut{0};

}  // namespace

void RequestLimitStream::StartRequest() {
  cut_ = RequestCut::kNone;
  in_head_ = true;
  parsed_ = false;
  read_ = lines_ = line_bytes_ = 0;
  line_starts_with_cr_ = false;
}

// httplib's header reader takes lines ending in '\n', and stops at the first
// one, after the request line, that is exactly "\r\n" (lines without "\r\n"
// are skipped, not ends). The count must not end the head before httplib
// does: the rest of the head would then be counted against the body limit.
bool RequestLimitStream::EndsHead(char c) {
  if (++line_bytes_ == 1) line_starts_with_cr_ = c == '\r';
  if (c != '\n') return false;
  const bool blank = lines_ > 0 && line_bytes_ == 2 && line_starts_with_cr_;
  ++lines_;
  line_bytes_ = 0;
  return blank;
}

ssize_t RequestLimitStream::read(char* ptr, size_t size) {
  if (cut_ != RequestCut::kNone) return 0;
  const size_t limit = in_head_ ? head_limit_ : body_limit_;
  if (read_ >= limit) {
    cut_ = in_head_ ? RequestCut::kHead : RequestCut::kBody;
    (in_head_ ? g_heads_cut : g_bodies_cut).fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  // Never more than the limit allows, so that what httplib holds is bounded
  // by the limit whatever its read sizes.
  const ssize_t n = inner_.read(ptr, std::min(size, limit - read_));
  if (n <= 0 || !in_head_) {
    if (n > 0) read_ += size_t(n);
    return n;
  }
  // httplib reads the head a byte at a time; should it read more, the bytes
  // after the head's end count towards the body.
  for (ssize_t i = 0; i < n; ++i) {
    if (EndsHead(ptr[i])) {
      in_head_ = false;
      read_ = size_t(n - i - 1);
      return n;
    }
  }
  read_ += size_t(n);
  return n;
}

uint64_t RequestHeadsCut() { return g_heads_cut.load(std::memory_order_relaxed); }
uint64_t RequestBodiesCut() { return g_bodies_cut.load(std::memory_order_relaxed); }

}  // namespace lockprof::server
