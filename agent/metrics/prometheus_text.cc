#include "lockprof/agent/metrics/prometheus_text.h"

#include <charconv>
#include <cmath>

#include "lockprof/agent/base/utf8.h"

namespace lockprof::agent {

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : ValidUtf8(value)) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // The shortest form that reads back as v, with a '.' whatever the
  // program's locale: printf's would write "1,6e-05" once the host called
  // setlocale(LC_ALL, "") under a German or French LANG, and Prometheus
  // rejects the whole scrape for it.
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void PromText::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_->append("# HELP ").append(name).append(" ");
  for (char c : help) {
    if (c == '\\') {
      out_->append("\\\\");
    } else if (c == '\n') {
      out_->append("\\n");
    } else {
      out_->push_back(c);
    }
  }
  out_->append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PromText::Begin(std::string_view name, const PromLabels& labels) {
  out_->append(name);
  if (!labels.empty()) {
    out_->push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_->push_back(',');
      out_->append(labels[i].first).append("=\"");
      out_->append(EscapeLabelValue(labels[i].second)).append("\"");
    }
    out_->push_back('}');
  }
  out_->push_back(' ');
}

void PromText::Sample(std::string_view name, const PromLabels& labels, uint64_t value) {
  Begin(name, labels);
  out_->append(std::to_string(value)).push_back('\n');
}

void PromText::Sample(std::string_view name, const PromLabels& labels, double value) {
  Begin(name, labels);
  out_->append(FormatDouble(value)).push_back('\n');
}

}  // namespace lockprof::agent
