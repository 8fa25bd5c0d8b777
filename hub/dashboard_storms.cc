// What a site's outbox could not keep, from the summary records its outbox sends
// (outbox/FORMAT.md sections 9, 11, 12): its storms, one per rule and run of summary windows,
// and the newest account. Read for the site page and the fleet view (dashboard_sites.cc).

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "base/json/json.h"
#include "base/json_writer.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

// Two storm windows of one rule this close are one storm: summaries come hourly.
constexpr int64_t kStormGapMs = 2 * 3'600'000;
// The most summary records read per site (a month of hourly summaries, and some).
constexpr size_t kMaxSummaries = 1000;
// The most sites one read names (the store takes up to 1,000).
constexpr size_t kMaxSitesARead = 100;

// "15.4 M", "1,008": a count as the dashboard shows it.
std::string CountText(uint64_t n) {
  char buf[32];
  if (n >= 1'000'000) {
    auto [end, ec] =
        std::to_chars(buf, buf + sizeof(buf), std::round(static_cast<double>(n) / 100'000) / 10,
                      std::chars_format::fixed, 1);
    (void)ec;
    return std::string(buf, end) + " M";
  }
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// "06:10": the UTC hour and minute of a Unix millisecond.
std::string ClockText(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%02d:%02d", tm.tm_hour, tm.tm_min);
  return buf;
}

// Adds the storms of one summary record to `storms`, keyed by (kind, stream, rule).
void AddStorms(json::Value summary, std::vector<Storm>& storms) {
  json::Value rules = summary["rules"];
  if (!rules.is_array()) return;
  for (json::Value r : rules.Items()) {
    const uint64_t sampled_out = CountField(r, "sampled_out");
    std::optional<double> from = NumberField(r, "storm_from_ms");
    std::optional<double> to = NumberField(r, "storm_to_ms");
    if (sampled_out == 0 || !from || !to) continue;
    Storm s{.kind = StringField(r, "kind"),
            .stream = StringField(r, "stream"),
            .rule = StringField(r, "rule"),
            .raised = CountField(r, "raised"),
            .evicted = CountField(r, "evicted"),
            .from_ms = static_cast<int64_t>(*from),
            .to_ms = static_cast<int64_t>(*to)};
    if (s.kind.empty() || s.from_ms > s.to_ms) continue;
    // Kept for good: a record stored and later replaced in the sample counts as sampled out,
    // and one stored and later evicted as evicted.
    s.kept = s.raised - std::min(s.raised, sampled_out + CountField(r, "refused") + s.evicted);
    auto same = std::find_if(storms.rbegin(), storms.rend(), [&](const Storm& o) {
      return o.kind == s.kind && o.stream == s.stream && o.rule == s.rule &&
             s.from_ms - o.to_ms <= kStormGapMs && o.from_ms - s.to_ms <= kStormGapMs;
    });
    if (same == storms.rend()) {
      storms.push_back(std::move(s));
      continue;
    }
    same->raised += s.raised;
    same->kept += s.kept;
    same->evicted += s.evicted;
    same->from_ms = std::min(same->from_ms, s.from_ms);
    same->to_ms = std::max(same->to_ms, s.to_ms);
  }
}

}  // namespace

std::string StormText(const Storm& storm) {
  return storm.kind + " storm: " + CountText(storm.raised) + " raised, " + CountText(storm.kept) +
         " kept, " + (storm.evicted > 0 ? CountText(storm.evicted) + " evicted, " : std::string()) +
         ClockText(storm.from_ms) + "\u2013" + ClockText(storm.to_ms);
}

Result<std::map<std::string, SiteOverflow>> ReadSitesOverflow(
    Store& store, const std::string& tenant, const std::vector<std::string>& site_ids,
    int64_t since_ms) {
  // Each site's storms so far and its newest summary's account.
  struct Reading {
    SiteOverflow overflow;
    size_t summaries = 0;
    int64_t newest = -1;
    std::string newest_classes, newest_rules;
  };
  std::map<std::string, Reading> readings;
  for (const std::string& site : site_ids) readings[site];
  json::Parser parser;
  // One read for every site named: their summary records, from the site index (hub/STORE.md
  // section 6), at most kMaxSummaries a site.
  for (size_t first = 0; first < site_ids.size(); first += kMaxSitesARead) {
    const size_t count = std::min(kMaxSitesARead, site_ids.size() - first);
    RecordQuery query{.tenant = tenant,
                      .site_ids = std::vector<std::string>(site_ids.begin() + first,
                                                           site_ids.begin() + first + count),
                      .kind = "event",
                      .stream = "_outbox",
                      .since_ms = since_ms,
                      .limit = 1000};
    bool truncated = false;
    Status scanned = ScanRecords(
        store, query, kMaxSummaries * count,
        [&](const HubRecord& record) {
          auto it = readings.find(record.site_id);
          if (it == readings.end() || it->second.summaries == kMaxSummaries) return;
          Reading& r = it->second;
          ++r.summaries;
          json::Value v;
          if (!ParseObject(parser, record.payload, v)) return;
          if (StringField(v, "type") != "outbox_summary") return;
          AddStorms(v, r.overflow.storms);
          std::optional<double> to = NumberField(v, "to_ms");
          if (to && static_cast<int64_t>(*to) > r.newest && v["classes"].is_object()) {
            r.newest = static_cast<int64_t>(*to);
            r.newest_classes = v["classes"].ToJson();
            r.newest_rules = v["rules"].is_array() ? v["rules"].ToJson() : "[]";
          }
        },
        &truncated);
    OUTPOST_RETURN_IF_ERROR(scanned);
  }
  std::map<std::string, SiteOverflow> out;
  for (auto& [site, r] : readings) {
    std::sort(r.overflow.storms.begin(), r.overflow.storms.end(),
              [](const Storm& a, const Storm& b) { return a.from_ms > b.from_ms; });
    if (r.newest >= 0) {
      r.overflow.account_as_of_ms = r.newest;
      r.overflow.account_json = std::move(r.newest_classes);
      r.overflow.rules_json = std::move(r.newest_rules);
    }
    out.emplace(site, std::move(r.overflow));
  }
  return out;
}

Result<SiteOverflow> ReadSiteOverflow(Store& store, const std::string& tenant,
                                      const std::string& site_id, int64_t since_ms) {
  OUTPOST_ASSIGN_OR_RETURN(auto overflows, ReadSitesOverflow(store, tenant, {site_id}, since_ms));
  return std::move(overflows[site_id]);
}

void WriteOverflow(JsonWriter& w, const SiteOverflow& overflow) {
  w.Key("storms");
  w.BeginArray();
  for (const Storm& s : overflow.storms) {
    w.BeginObject();
    w.Key("kind");
    w.String(s.kind);
    w.Key("stream");
    w.String(s.stream);
    w.Key("rule");
    w.String(s.rule);
    w.Key("raised");
    w.Uint(s.raised);
    w.Key("kept");
    w.Uint(s.kept);
    w.Key("evicted");
    w.Uint(s.evicted);
    w.Key("from_ms");
    w.Int(s.from_ms);
    w.Key("to_ms");
    w.Int(s.to_ms);
    w.Key("text");
    w.String(StormText(s));
    w.EndObject();
  }
  w.EndArray();
  w.Key("outbox_account");
  if (overflow.account_json.empty()) {
    w.Null();
  } else {
    w.BeginObject();
    w.Key("as_of_ms");
    w.Int(overflow.account_as_of_ms);
    w.Key("classes");
    w.Raw(overflow.account_json);
    w.Key("rules");
    w.Raw(overflow.rules_json.empty() ? std::string("[]") : overflow.rules_json);
    w.EndObject();
  }
}

}  // namespace outpost::hub::dashboard_internal
