// Bounds how many bytes one request may make cpp-httplib read, so that no
// client can make the admin server hold unbounded memory while it reads a
// request within the read deadline.
//
// httplib 0.11 reads a request's head (request line and headers) line by
// line into growing strings and keeps every header in a multimap: it checks
// the request line (8 KiB, 414) and each header line (8 KiB, 400) only once
// they are in memory, and not the number of headers at all. A client sending
// headers for the whole read deadline (5 s) would make it store hundreds of
// megabytes. The body is bounded by set_payload_max_length, but not the
// lines that frame a chunked body (chunk sizes with extensions, trailers).
//
// RequestLimitStream sits between httplib and the connection and counts what
// httplib reads for the current request:
//   - the head, up to and including the blank line that ends it, found as
//     httplib finds it (a line "\r\n" after the request line), at most
//     `head_limit` bytes;
//   - after the head, at most `body_limit` bytes.
// Past a limit, reads return 0 (end of input) until the next request: httplib
// then answers the request it could not finish with 400 (the admin server
// turns that into 431 or 413, see CurrentRequestCut()) or, for a request line
// longer than 8 KiB, 414, and the server closes the connection.
//
// One thread uses a stream at a time (the one serving the connection).
#ifndef LOCKPROF_SERVER_HTTPLIB_REQUEST_LIMIT_STREAM_H_
#define LOCKPROF_SERVER_HTTPLIB_REQUEST_LIMIT_STREAM_H_

#include <httplib.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "lockprof/server/httplib/request_limit_counters.h"

namespace lockprof::server {

// Which limit, if any, cut the current request; kRefused: none, but the
// request cannot be trusted to end where its framing says (httplib could not
// parse it, or its length is ambiguous), so nothing after it on the
// connection can be read as a request.
enum class RequestCut { kNone, kHead, kBody, kRefused };

class RequestLimitStream final : public httplib::Stream {
 public:
  RequestLimitStream(httplib::Stream& inner, size_t head_limit, size_t body_limit)
      : inner_(inner), head_limit_(head_limit), body_limit_(body_limit) {}

  // A new request starts: its head is counted from its first byte.
  void StartRequest();
  RequestCut cut() const { return cut_; }
  // The request was parsed (it reached the pre-routing handler).
  void MarkParsed() { parsed_ = true; }
  bool parsed() const { return parsed_; }
  // Answer this request, then close the connection (kRefused).
  void Refuse() {
    if (cut_ == RequestCut::kNone) cut_ = RequestCut::kRefused;
  }

  bool is_readable() const override { return inner_.is_readable(); }
  bool is_writable() const override { return inner_.is_writable(); }
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override { return inner_.write(ptr, size); }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    inner_.get_remote_ip_and_port(ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    inner_.get_local_ip_and_port(ip, port);
  }
  socket_t socket() const override { return inner_.socket(); }

 private:
  // Counts one byte of the head; true if it ends the head.
  bool EndsHead(char c);

  httplib::Stream& inner_;
  const size_t head_limit_, body_limit_;
  RequestCut cut_ = RequestCut::kNone;
  bool in_head_ = true;
  bool parsed_ = false;
  size_t read_ = 0;  // Bytes of the current part (head or body) read so far.
  // Where the head's reader is: lines completed, bytes into the current
  // line, and whether that line began with '\r'.
  size_t lines_ = 0, line_bytes_ = 0;
  bool line_starts_with_cr_ = false;
};

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_REQUEST_LIMIT_STREAM_H_
