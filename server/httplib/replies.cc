#include "lockprof/server/httplib/replies.h"

#include <algorithm>
#include <string>

#include "lockprof/server/httplib/bounded_server.h"
#include "lockprof/server/httplib/connection_deadlines.h"

namespace lockprof::server {

namespace {

// Whether a Content-Length value (empty: none, a chunked body) reads as a
// size: decimal digits, at most 19 of them past leading zeros (below 2^64).
bool ReadableLength(const std::string& value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
  }
  return value.size() - std::min(value.find_first_not_of('0'), value.size()) <= 19;
}

}  // namespace

void Reply(const Response& in, httplib::Response& out) {
  out.status = in.status;
  for (const auto& [k, v] : in.headers) out.set_header(k, v);
  out.set_content(in.body, in.content_type.c_str());
  ResponseReady();
}

bool AmbiguousLength(const httplib::Request& req) {
  const size_t lengths = req.get_header_value_count("Content-Length");
  if (lengths > 0 && req.has_header("Transfer-Encoding")) return true;
  for (size_t i = 1; i < lengths; ++i) {
    if (req.get_header_value("Content-Length", i) != req.get_header_value("Content-Length", 0)) {
      return true;
    }
  }
  return false;
}

bool HasBody(const httplib::Request& req) {
  return req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
}

void RefuseWith(int status, const char* text, httplib::Response& res) {
  RefuseCurrentRequest();
  res.status = status;
  res.set_header("Connection", "close");
  res.set_content(text, "text/plain; charset=utf-8");
  ResponseReady();
}

bool RefusedForItsLength(const httplib::Request& req, size_t max_body, httplib::Response& res) {
  const std::string length = req.get_header_value("Content-Length");
  if (!ReadableLength(length)) {
    RefuseWith(400, "Bad Request: invalid Content-Length\n", res);
    return true;
  }
  // Only a body httplib reads (a POST's) is held to the limit: the others
  // are answered before their body, and the connection closed.
  if (req.method == "POST" && !length.empty() && std::stoull(length) > max_body) {
    RefuseWith(413, "Payload Too Large\n", res);
    return true;
  }
  return false;
}

void AnswerBeforeBody(const httplib::Request& req, const Response& answer, httplib::Response& res) {
  if (HasBody(req)) {
    RefuseCurrentRequest();
    res.set_header("Connection", "close");
  }
  Reply(answer, res);
}

httplib::Server::HandlerResponse ExplainRefusedRequest(const httplib::Request& req,
                                                       httplib::Response& res) {
  // httplib answers a request cut by a size limit with 400, and one it
  // refused itself (it never reached the pre-routing handler) with 400 or 414.
  const RequestCut cut = CurrentRequestCut();
  if ((cut == RequestCut::kHead || cut == RequestCut::kBody) && res.status == 400) {
    const bool head = cut == RequestCut::kHead;
    RefuseWith(head ? 431 : 413, head ? "Request Header Fields Too Large\n" : "Payload Too Large\n",
               res);
    return httplib::Server::HandlerResponse::Handled;
  }
  // A chunked body over the limit (a Content-Length over it was refused
  // before routing): httplib says 413 without a word.
  if (res.status == 413 && res.body.empty()) {
    RefuseWith(413, "Payload Too Large\n", res);
    return httplib::Server::HandlerResponse::Handled;
  }
  // A body httplib could not read (a chunk size that is no number): 400
  // with nothing said, and no handler ran (their 400s say why). Where that
  // body ends is unknown: what follows must not be read as a request.
  if (res.status == 400 && res.body.empty() && CurrentRequestParsed() && HasBody(req)) {
    RefuseWith(400, "Bad Request: a body whose framing cannot be read\n", res);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (cut == RequestCut::kNone && !CurrentRequestParsed()) {
    RefuseWith(res.status,
               res.status == 414 ? "URI Too Long\n"
                                 : "Bad Request: malformed request line or header, a line over "
                                   "8 KiB, or an unknown method\n",
               res);
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

}  // namespace lockprof::server
