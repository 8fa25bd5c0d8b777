#include "base/logging.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>

#include "base/clock.h"

namespace outpost {
namespace {

struct LogState {
  std::mutex mu;  // guards options and serialises writes
  LogOptions options;
};

LogState& State() {
  static LogState* state = new LogState();
  return *state;
}

// Fast path for LogEnabled without taking the lock.
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

std::string_view LevelName(LogLevel level, bool upper) {
  switch (level) {
    case LogLevel::kDebug: return upper ? "DEBUG" : "debug";
    case LogLevel::kInfo: return upper ? "INFO" : "info";
    case LogLevel::kWarning: return upper ? "WARN" : "warning";
    case LogLevel::kError: return upper ? "ERROR" : "error";
  }
  return "info";
}

std::string FormatTime(Clock::WallTime t) {
  int64_t ms = UnixMillis(t);
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

// Source paths are shown relative to the project: "serve/handler.cc".
std::string_view ShortFile(const char* file) {
  std::string_view f(file);
  for (std::string_view dir : {"/base/", "/engine/", "/serve/", "/apps/", "/train/", "/outbox/",
                               "/insight/", "/sync/", "/policy/", "/bundle/", "/hub/", "/tests/"}) {
    size_t pos = f.rfind(dir);
    if (pos != std::string_view::npos) return f.substr(pos + 1);
  }
  return f;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is invalid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t len;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

Result<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return InvalidArgumentError("log format must be \"text\" or \"json\", not \"" +
                              std::string(name) + "\"");
}

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning" || name == "warn") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return InvalidArgumentError("log level must be debug, info, warning or error, not \"" +
                              std::string(name) + "\"");
}

void SetLogOptions(LogOptions options) {
  LogState& state = State();
  std::lock_guard<std::mutex> lock(state.mu);
  g_min_level.store(static_cast<int>(options.min_level), std::memory_order_relaxed);
  state.options = std::move(options);
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

void AppendJsonEscaped(std::string& out, std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
}

LogLine::LogLine(LogLevel level, const char* file, int line)
    : level_(level), file_(file), line_(line) {}

LogLine::~LogLine() {
  LogState& state = State();
  std::string out;
  std::string ts = FormatTime(SystemClock().Now());
  std::string src = std::string(ShortFile(file_)) + ":" + std::to_string(line_);
  std::string msg = message_.str();
  std::lock_guard<std::mutex> lock(state.mu);
  if (state.options.format == LogFormat::kJson) {
    out = "{\"ts\":\"" + ts + "\",\"level\":\"" + std::string(LevelName(level_, false)) +
          "\",\"src\":\"";
    AppendJsonEscaped(out, src);
    out += "\",\"msg\":\"";
    AppendJsonEscaped(out, msg);
    out += '"';
    for (const LogField& f : fields_) {
      out += ",\"";
      AppendJsonEscaped(out, f.key);
      out += "\":\"";
      AppendJsonEscaped(out, f.value);
      out += '"';
    }
    out += '}';
  } else {
    out = ts + " " + std::string(LevelName(level_, true)) + " " + src + " " + msg;
    for (const LogField& f : fields_) {
      out += ' ';
      out += f.key;
      out += '=';
      bool quote = f.value.empty() || f.value.find_first_of(" \"=") != std::string::npos;
      if (quote) {
        out += '"';
        AppendJsonEscaped(out, f.value);
        out += '"';
      } else {
        out += f.value;
      }
    }
  }
  if (state.options.sink) {
    state.options.sink(out);
  } else {
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
}

}  // namespace outpost
