// Answers written into cpp-httplib's responses by the built-in admin
// server: the router's answers, answers given before a request's body was
// read, refusals that close the connection, and the explanation of requests
// httplib refused itself. httplib specifics, kept out of the handlers.
#ifndef LOCKPROF_SERVER_HTTPLIB_REPLIES_H_
#define LOCKPROF_SERVER_HTTPLIB_REPLIES_H_

#include <httplib.h>

#include "lockprof/server/handlers/http_types.h"

namespace lockprof::server {

// Writes `in` into `out`; the response is then ready to be sent.
void Reply(const Response& in, httplib::Response& out);

// Whether where `req` ends is ambiguous (RFC 9112, 6.3): Transfer-Encoding
// with Content-Length, or Content-Lengths that differ. A proxy in front may
// take another end than httplib, and serve what follows as a request of its
// own (request smuggling).
bool AmbiguousLength(const httplib::Request& req);

// Whether `req` says it has a body (Content-Length or Transfer-Encoding).
bool HasBody(const httplib::Request& req);

// Answers `status` with `text` and closes the connection after it, saying so.
void RefuseWith(int status, const char* text, httplib::Response& res);

// Refuses `req`, from the pre-routing handler, if its Content-Length reads
// as no size (negative, not a number, past 2^64: 400, as Go's server says)
// or, for a POST, is over `max_body` (413), and says so. httplib answered both 413
// without a word, and only after reading (skipping) the body it announced:
// a length of -1 held the connection until the read timeout.
bool RefusedForItsLength(const httplib::Request& req, size_t max_body, httplib::Response& res);

// Answers `req` before httplib read its body (if any), from the pre-routing
// handler. A body left unread would be read as the next request of the
// connection and answered too (one request, two answers: behind a proxy that
// pools connections, the second goes to another client): with one, the
// connection closes after the answer.
void AnswerBeforeBody(const httplib::Request& req, const Response& answer, httplib::Response& res);

// httplib's error handler: called for every response with a status of 400
// or more. A request cut by a size limit is answered with which limit (as
// Go's server does: 431 for the head, 413 for the body); a request httplib
// refused itself (a malformed request line or header, a line over its 8 KiB
// limit, an unknown method) gets its 400 or 414 explained. Both close the
// connection: where such a request ends is unknown, and what follows must
// not be served.
httplib::Server::HandlerResponse ExplainRefusedRequest(const httplib::Request& req,
                                                       httplib::Response& res);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_REPLIES_H_
