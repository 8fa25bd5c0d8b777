#include "base/names.h"

namespace outpost {
namespace {

// At most this many bytes of a refused name are quoted in its message.
constexpr size_t kMaxQuoted = 64;

bool Allowed(const NameRule& rule, char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  if (c >= 'A' && c <= 'Z') return rule.upper_case;
  if (c == '_') return !first || rule.underscore_first;
  if (c == '.' || c == '-') return !first;
  if (c == ':') return !first && rule.colon;
  return false;
}

// `text` as a message shows it: printable ASCII as is, other bytes as \xNN.
std::string Quoted(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : text.substr(0, kMaxQuoted)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  if (text.size() > kMaxQuoted) out += "...";
  out += '"';
  return out;
}

Status Refuse(const NameRule& rule, std::string_view text, std::string_view why) {
  std::string message(rule.what);
  message += ' ';
  message += Quoted(text);
  message += ' ';
  message += why;
  message += "; a ";
  message += rule.what;
  message += " is ";
  message += rule.pattern;
  return InvalidArgumentError(message).WithReason(rule.reason);
}

}  // namespace

Status CheckName(const NameRule& rule, std::string_view text) {
  if (text.empty()) return Refuse(rule, text, "is empty");
  if (text.size() > rule.max_bytes) {
    return Refuse(rule, text,
                  "is " + std::to_string(text.size()) + " bytes, more than " +
                      std::to_string(rule.max_bytes));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (!Allowed(rule, text[i], i == 0)) {
      std::string why = "has ";
      auto u = static_cast<unsigned char>(text[i]);
      if (u >= 0x20 && u < 0x7f) {
        why += '\'';
        why += text[i];
        why += '\'';
      } else {
        why += "a byte outside printable ASCII";
      }
      why += " at byte " + std::to_string(i);
      return Refuse(rule, text, why);
    }
  }
  return Status::Ok();
}

}  // namespace outpost
