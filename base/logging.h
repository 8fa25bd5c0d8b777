// Logging: one line per event on stderr (or a chosen sink), as readable text by default or
// as JSON lines (`--log-format=json`) for log collectors.
//
//   OUTPOST_LOG(kInfo) << "model loaded" << Field("model", name) << Field("version", v);
//
// Text:  2026-11-25T12:00:00.123Z INFO serve/repository.cc:42 model loaded model=iris version=1
// JSON:  {"ts":"2026-11-25T12:00:00.123Z","level":"info","src":"serve/repository.cc:42",
//         "msg":"model loaded","model":"iris","version":"1"}
//
// Thread-safe: each line is formatted privately and written with one call under a lock.
#ifndef OUTPOST_BASE_LOGGING_H_
#define OUTPOST_BASE_LOGGING_H_

#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace outpost {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// Parses "text" / "json". InvalidArgument otherwise.
Result<LogFormat> ParseLogFormat(std::string_view name);
// Parses "debug" / "info" / "warning" / "error".
Result<LogLevel> ParseLogLevel(std::string_view name);

struct LogOptions {
  LogFormat format = LogFormat::kText;
  LogLevel min_level = LogLevel::kInfo;
  // Receives each complete line, without the newline. Empty = write to stderr.
  std::function<void(std::string_view line)> sink;
};

// Replaces the process-wide logging options. Safe to call at any time.
void SetLogOptions(LogOptions options);
bool LogEnabled(LogLevel level);

// A key=value pair attached to a log line.
struct LogField {
  std::string key;
  std::string value;
};
template <typename T>
LogField Field(std::string_view key, const T& value) {
  std::ostringstream s;
  s << value;
  return LogField{std::string(key), s.str()};
}
inline LogField Field(std::string_view key, const Status& status) {
  return LogField{std::string(key), status.ToString()};
}

// Collects one line and emits it when destroyed.
class LogLine {
 public:
  LogLine(LogLevel level, const char* file, int line);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& operator<<(const LogField& field) {
    fields_.push_back(field);
    return *this;
  }
  template <typename T>
  LogLine& operator<<(const T& value) {
    message_ << value;
    return *this;
  }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream message_;
  std::vector<LogField> fields_;
};

// Appends `s` to `out` as the body of a JSON string (quotes not included), escaping what
// JSON requires. Bytes that are not valid UTF-8 are replaced by U+FFFD.
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace outpost

#define OUTPOST_LOG(level)                                  \
  if (!::outpost::LogEnabled(::outpost::LogLevel::level)) { \
  } else                                                    \
    ::outpost::LogLine(::outpost::LogLevel::level, __FILE__, __LINE__)

#endif  // OUTPOST_BASE_LOGGING_H_
