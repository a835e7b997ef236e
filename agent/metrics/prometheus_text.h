// Writing the Prometheus text exposition format, version 0.0.4: metric
// families (# HELP, # TYPE), samples with escaped label values, and numbers
// as Prometheus parses them.
#ifndef LOCKPROF_AGENT_METRICS_PROMETHEUS_TEXT_H_
#define LOCKPROF_AGENT_METRICS_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockprof::agent {

// The Content-Type of a /metrics answer in this format.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

using PromLabels = std::vector<std::pair<std::string_view, std::string>>;

// `value` as a label value: valid UTF-8 (invalid bytes become U+FFFD), with
// backslash, double quote and newline escaped.
std::string EscapeLabelValue(std::string_view value);

// The shortest decimal form that parses back to `v` ("1e-06", "0.5",
// "+Inf", "NaN").
std::string FormatDouble(double v);

// Appends exposition text to a string.
class PromText {
 public:
  explicit PromText(std::string* out) : out_(out) {}

  // Starts a family: `type` is "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const PromLabels& labels, uint64_t value);
  void Sample(std::string_view name, const PromLabels& labels, double value);

 private:
  void Begin(std::string_view name, const PromLabels& labels);

  std::string* out_;
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_METRICS_PROMETHEUS_TEXT_H_
