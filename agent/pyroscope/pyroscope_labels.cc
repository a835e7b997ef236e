#include "lockprof/agent/pyroscope/pyroscope_labels.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <utility>

#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/metrics/self_metrics.h"

namespace lockprof::agent::pyroscope {

namespace {

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

// `s` cut to at most `limit` bytes, not inside a UTF-8 character. True if
// it was cut.
bool CutAtCharacter(std::string* s, size_t limit) {
  const size_t end = Utf8PrefixBytes(*s, limit);
  if (end == s->size()) return false;
  s->resize(end);
  return true;
}

}  // namespace

void FitSampleLabels(const std::vector<std::string>& series_names,
                     std::vector<std::pair<std::string, std::string>>* labels, LabelFixes* fixes) {
  // "lock" first, so that it is the one kept when names are too many.
  std::stable_partition(labels->begin(), labels->end(),
                        [](const auto& l) { return l.first == "lock"; });
  std::set<std::string> seen(series_names.begin(), series_names.end());
  seen.insert(std::begin(kServerLabelNames), std::end(kServerLabelNames));
  const size_t room = kMaxLabelNamesPerSeries - std::min(kMaxLabelNamesPerSeries, seen.size());
  std::vector<std::pair<std::string, std::string>> kept;
  for (auto& [name, value] : *labels) {
    if (name.empty() || kept.size() == room) {
      ++fixes->dropped;
      continue;
    }
    std::string fitted;
    if (!IsNameChar(name[0], true) && IsNameChar(name[0], false)) fitted += '_';
    for (size_t i = 0; i < name.size(); ++i) {
      fitted += IsNameChar(name[i], i == 0 && fitted.empty()) ? name[i] : '_';
    }
    if (fitted != name) ++fixes->renamed;
    if (CutAtCharacter(&fitted, kMaxLabelNameBytes)) ++fixes->truncated;
    if (!seen.insert(fitted).second) {
      ++fixes->dropped;
      continue;
    }
    // Made valid first, as the encoder would (each bad byte becomes U+FFFD,
    // three bytes), so that the limit holds for what is sent.
    if (!IsValidUtf8(value)) value = ValidUtf8(value);
    if (CutAtCharacter(&value, kMaxLabelValueBytes)) ++fixes->truncated;
    kept.emplace_back(std::move(fitted), std::move(value));
  }
  *labels = std::move(kept);
}

std::function<void(std::vector<std::pair<std::string, std::string>>*)> LabelFitter(
    std::vector<std::string> series_names) {
  return [series_names =
              std::move(series_names)](std::vector<std::pair<std::string, std::string>>* labels) {
    LabelFixes fixes;
    FitSampleLabels(series_names, labels, &fixes);
    if (fixes.renamed != 0) CountUploadLabelChanges(LabelChange::kRenamed, fixes.renamed);
    if (fixes.truncated != 0) CountUploadLabelChanges(LabelChange::kTruncated, fixes.truncated);
    if (fixes.dropped != 0) CountUploadLabelChanges(LabelChange::kDropped, fixes.dropped);
  };
}

}  // namespace lockprof::agent::pyroscope
