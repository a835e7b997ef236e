// Text put into HTML (an attribute or an element), escaped as Go's
// html.EscapeString does, which net/http/pprof's index and Redirect use.
#ifndef LOCKPROF_SERVER_HANDLERS_HTML_ESCAPE_H_
#define LOCKPROF_SERVER_HANDLERS_HTML_ESCAPE_H_

#include <string>
#include <string_view>

namespace lockprof::server {

inline std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_HTML_ESCAPE_H_
