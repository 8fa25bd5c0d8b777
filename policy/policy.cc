#include "policy/policy.h"

namespace outpost::policy {

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kKeep: return "keep";
    case Action::kDrop: return "drop";
    case Action::kHash: return "hash";
    case Action::kRound: return "round";
    case Action::kTruncateTime: return "truncate_time";
    case Action::kCoarsen: return "coarsen";
  }
  return "unknown";
}

const KindRule* Policy::FindKind(std::string_view kind) const {
  auto it = kinds.find(kind);
  return it == kinds.end() ? nullptr : &it->second;
}

const Region* Policy::FindRegion(std::string_view site) const {
  std::string_view region_name = default_region;
  if (auto it = sites.find(site); it != sites.end()) region_name = it->second;
  if (region_name.empty()) return nullptr;
  auto it = regions.find(region_name);
  return it == regions.end() ? nullptr : &it->second;
}

namespace internal {

Status ValidatePath(std::string_view path) {
  if (path.empty()) return InvalidArgumentError("empty field path");
  size_t segments = 0;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string_view segment =
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    ++segments;
    if (segments > kMaxPathSegments) return InvalidArgumentError("field path has over 8 segments");
    if (segment.empty() || segment.size() > kMaxNameBytes) {
      return InvalidArgumentError("field path segments must be 1 to 128 bytes");
    }
    const bool last = dot == std::string_view::npos;
    if (segment == "*") {
      if (!last) return InvalidArgumentError("`*` may only be a path's last segment");
    } else {
      for (char c : segment) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return InvalidArgumentError("field path segments are [A-Za-z0-9_-] or `*`");
      }
    }
    if (last) break;
    start = dot + 1;
  }
  return Status::Ok();
}

Status ValidateName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return InvalidArgumentError("names are 1 to 128 bytes");
  }
  for (char c : name) {
    if (c <= ' ' || c > '~') return InvalidArgumentError("names are printable ASCII, no spaces");
  }
  return Status::Ok();
}

std::optional<RecordClass> DefaultClass(std::string_view kind) {
  if (kind == "anomaly" || kind == "hard_example" || kind == "sample" || kind == "feedback") {
    return RecordClass::kRaw;
  }
  if (kind == "aggregate" || kind == "drift" || kind == "event") return RecordClass::kAggregate;
  return std::nullopt;
}

}  // namespace internal
}  // namespace outpost::policy
