// Each sample's string labels (a lock's name, ScopedLabels' user labels),
// fitted to what Pyroscope accepts, for the profiles the uploader sends.
// Pyroscope makes a sample's labels part of its series' labels, and refuses
// a whole upload if any series breaks its rules (grafana/pyroscope
// pkg/validation ValidateLabels): so one odd label would lose every
// profile of the interval. The admin endpoint's profiles keep the labels as
// recorded: pprof has no such rules.
#ifndef LOCKPROF_AGENT_PYROSCOPE_PYROSCOPE_LABELS_H_
#define LOCKPROF_AGENT_PYROSCOPE_PYROSCOPE_LABELS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace lockprof::agent::pyroscope {

// Pyroscope's default limits, and the label names its /ingest adds to
// every series.
inline constexpr size_t kMaxLabelNamesPerSeries = 30;
inline constexpr const char* kServerLabelNames[] = {"__name__", "service_name", "pyroscope_spy",
                                                    "__delta__"};
inline constexpr size_t kMaxLabelNameBytes = 1024;
inline constexpr size_t kMaxLabelValueBytes = 2048;

struct LabelFixes {
  uint64_t renamed = 0;    // A name with characters Prometheus names lack.
  uint64_t truncated = 0;  // A value (or name) over the limit.
  uint64_t dropped = 0;    // An empty name, a repeated one, or one too many.
};

// Fits one sample's string labels, in a series whose own label names (the
// app's) are `series_names`: a name becomes a Prometheus name
// ([a-zA-Z_][a-zA-Z0-9_]*: every other character '_', as Prometheus
// renames; '_' put before a leading digit), a value is cut to 2048 bytes
// where no UTF-8 character is split, an empty name or one already in the
// sample is dropped, and so are the labels past the series limit of 30
// names ("lock" is kept first). A name the series has already (one of the
// app's, or one the server adds, such as service_name) is dropped too:
// Pyroscope keeps the series' value and ignores the sample's without a
// word, so dropping it here is what makes it visible (counted). Counts what
// it changed in *fixes.
void FitSampleLabels(const std::vector<std::string>& series_names,
                     std::vector<std::pair<std::string, std::string>>* labels, LabelFixes* fixes);

// FitSampleLabels for BuildOptions::fit_labels, counting what it changed in
// /metrics (lockprof_upload_labels_changed_total{change}).
std::function<void(std::vector<std::pair<std::string, std::string>>*)> LabelFitter(
    std::vector<std::string> series_names);

}  // namespace lockprof::agent::pyroscope

#endif  // LOCKPROF_AGENT_PYROSCOPE_PYROSCOPE_LABELS_H_
