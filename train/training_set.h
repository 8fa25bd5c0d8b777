// Labelled rows from edge records (the join rule of train/FORMAT.md section 4), split into a
// training side and a holdout, with the record ranges they came from (lineage).
#ifndef OUTPOST_TRAIN_TRAINING_SET_H_
#define OUTPOST_TRAIN_TRAINING_SET_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/dataset.h"
#include "train/edge_records.h"

namespace outpost::train {

struct JoinOptions {
  std::string model{};                  // records of other models are skipped
  std::vector<std::string> features{};  // the column order of the rows; 1 .. 4096 names
  std::map<std::string, float> labels{};  // string labels → 0 or 1
  double holdout_fraction = 0.3;          // in [0, 1]
  std::string salt{};
};

// The records of one (site, node, stream, kind) that contributed rows.
struct RecordRange {
  std::string site_id{};
  std::string node_id{};
  std::string stream{};
  std::string kind{};
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t count = 0;
  friend bool operator==(const RecordRange&, const RecordRange&) = default;
};

// What happened to the feedback records read (FORMAT.md section 4).
struct JoinCounts {
  uint64_t feedback = 0;  // feedback records of the model read
  uint64_t labelled = 0;  // requests that became a row (training side or holdout)
  uint64_t unmatched = 0;
  uint64_t ambiguous = 0;
  uint64_t incomplete = 0;
  uint64_t bad_label = 0;
  uint64_t superseded = 0;
  uint64_t malformed = 0;    // records of any of the four kinds whose payload did not parse
  uint64_t other_model = 0;  // records whose payload names another model
};

struct EdgeExamples {
  Dataset train{};    // labelled rows of the training side
  Dataset holdout{};  // labelled rows held out for the champion/challenger evaluation
  std::vector<RecordRange> ranges{};  // sorted by site, node, stream, kind
  JoinCounts counts{};
};

// Joins feedback labels with the inputs of the same request (FORMAT.md section 4). Records of
// kinds other than the four the rule reads are ignored. InvalidArgument only for bad
// options; bad records are counted, never fatal.
Result<EdgeExamples> JoinEdgeRecords(std::span<const EdgeRecord> records,
                                     const JoinOptions& options);

// Whether the request `request_id` of `site_id` is held out (FORMAT.md section 4, step 6).
bool InHoldout(std::string_view site_id, std::string_view request_id, std::string_view salt,
               double fraction);

}  // namespace outpost::train

#endif  // OUTPOST_TRAIN_TRAINING_SET_H_
