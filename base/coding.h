// Byte coding: fixed-width integers with their byte order in the name, and hexadecimal.
//
// Every integer that Outpost writes to disk or to the wire goes through the Put*/Get*
// functions here, so the byte order of a format is visible at each call: little-endian
// (`LE`) for Outpost's own formats (sync/FORMAT.md, the outbox's records, the training data
// set file), big-endian (`BE`) where an outside protocol says so (PostgreSQL's binary formats).
//
// Put* appends to a string. Get* reads from a pointer to at least as many bytes as its width;
// it never checks a length, so the caller does (sync/wire.h's Reader is the bounds-checked
// reader of sync/). All of these are pure functions and thread-safe.
//
// Hex is lowercase when written. Readers say which case they accept: HexValue() and
// HexCase::kEither take both (URL escapes, hand-written key files), while LowerHexValue(),
// IsLowerHex(), IsHex64() and HexCase::kLower take lowercase only, the canonical form of
// digests, key ids and signatures (uppercase is refused there, so each value has one spelling).
#ifndef OUTPOST_BASE_CODING_H_
#define OUTPOST_BASE_CODING_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace outpost {

// --- Fixed-width integers ---

inline void PutU16LE(std::string& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutU32LE(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutU64LE(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutU32BE(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}
inline void PutU64BE(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

// Preconditions: `p` points at 2, 4 or 8 readable bytes.
inline uint16_t GetU16LE(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) |
                               (static_cast<uint16_t>(static_cast<uint8_t>(p[1])) << 8));
}
inline uint32_t GetU32LE(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetU64LE(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint32_t GetU32BE(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetU64BE(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// --- Hexadecimal ---

// Two lowercase digits a byte: "\x01\xab" -> "01ab"; "" -> "".
std::string HexEncode(std::string_view bytes);
// The same for raw bytes (an OpenSSL digest, a std::array<uint8_t, 32>).
std::string HexEncode(std::span<const uint8_t> bytes);

// The value 0..15 of a hex digit of either case, or -1 when `c` is not one.
int HexValue(char c);
// The value 0..15 of a lowercase hex digit, or -1 (also for 'A'..'F').
int LowerHexValue(char c);

// True when every character is a lowercase hex digit (true for "").
bool IsLowerHex(std::string_view s);
// True for exactly 64 lowercase hex digits: the canonical text of a SHA-256 digest.
bool IsHex64(std::string_view s);

// Reads `text` as an unsigned decimal number into *out: true only when it is one or more
// ASCII digits and nothing else (no sign, space or prefix) and the value fits 64 bits.
bool ParseDecimal(std::string_view text, uint64_t* out);

enum class HexCase {
  kLower,   // only '0'-'9' and 'a'-'f': the canonical form
  kEither,  // 'A'-'F' too
};

// The bytes that `hex` spells, two digits a byte. InvalidArgument "odd-length hex" for an odd
// length, and "not lowercase hex" (kLower) or "not hex" (kEither) for any other character.
Result<std::string> HexDecode(std::string_view hex, HexCase accept = HexCase::kLower);

// ---- Base64 (RFC 4648)

enum class Base64Alphabet {
  kStandard,  // section 4: '+' and '/', padded with '=' (PEM bodies, MIME)
  kUrl,       // section 5: '-' and '_', no padding (tokens and values in URLs and headers)
};

// `bytes` in base64 of the given alphabet.
std::string Base64Encode(std::string_view bytes, Base64Alphabet alphabet = Base64Alphabet::kStandard);

// The bytes `text` spells. Strict, so that one value has one spelling: no whitespace, only
// the alphabet's characters, padding exactly as the alphabet says (kStandard: a length that
// is a multiple of 4, '=' only at the end; kUrl: no '='), and the unused low bits of the last
// character zero. InvalidArgument (reason "bad_base64") otherwise.
Result<std::string> Base64Decode(std::string_view text,
                                 Base64Alphabet alphabet = Base64Alphabet::kStandard);

}  // namespace outpost

#endif  // OUTPOST_BASE_CODING_H_
