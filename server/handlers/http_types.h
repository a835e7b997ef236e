// Transport-independent request and response types: handlers are plain
// functions of a request, testable and fuzzable without a socket.
#ifndef LOCKPROF_SERVER_HANDLERS_HTTP_TYPES_H_
#define LOCKPROF_SERVER_HANDLERS_HTTP_TYPES_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lockprof::server {

struct Request {
  std::string method = "GET";
  std::string path;  // Decoded path, without the query.
  // Decoded query parameters; a repeated key keeps every value in order.
  std::multimap<std::string, std::string> params;
  // The query as sent, undecoded, without the '?' (Go's URL.RawQuery).
  std::string query;
  std::string body;
  // Set by the transport: true once the client has gone away, so that a
  // handler that waits (?seconds=N) can give up early (answering 500
  // "context canceled", as Go does, to nobody). Cheap enough to call every
  // few tens of milliseconds. Unset: the request is never cancelled.
  std::function<bool()> cancelled;
  // The same, true once the server (or the process) is stopping: the client
  // is still there, and is told so (503).
  std::function<bool()> stopping;

  // First value of `key`, or nullptr.
  const std::string* Param(const std::string& key) const {
    auto it = params.find(key);
    return it == params.end() ? nullptr : &it->second;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A plain-text response with `status` and `body`.
inline Response PlainResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Go's net/http/pprof serveError: text/plain, X-Go-Pprof: 1, the message
// and a newline.
inline Response ErrorResponse(int status, const std::string& message) {
  Response r;
  r.status = status;
  r.headers.emplace_back("X-Go-Pprof", "1");
  r.body = message + "\n";
  return r;
}

// A download: application/octet-stream, saved as `filename` (Go's
// Content-Disposition for profiles).
inline Response AttachmentResponse(std::string body, const std::string& filename) {
  Response r;
  r.content_type = "application/octet-stream";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  r.body = std::move(body);
  return r;
}

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_HTTP_TYPES_H_
