// Bounds-checked little-endian reading, and the u8 and length-prefixed string writers, for
// sync/'s binary formats (FORMAT.md); base/coding.h's PutU16LE, PutU32LE and PutU64LE write
// the wider integers. The reader never reads past its input: every Read* returns false
// instead, and the caller turns that into its format's "truncated" reason. Thread-compatible.
#ifndef OUTPOST_SYNC_WIRE_H_
#define OUTPOST_SYNC_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/coding.h"

namespace outpost::sync::wire {

inline void PutU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
// A string of at most 255 bytes behind its u8 length (the caller checks the length).
inline void PutStr8(std::string& out, std::string_view s) {
  PutU8(out, static_cast<uint8_t>(s.size()));
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  size_t left() const { return in_.size() - pos_; }
  size_t pos() const { return pos_; }

  bool U8(uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool U16(uint16_t& v) {
    if (left() < 2) return false;
    v = GetU16LE(in_.data() + pos_);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t& v) {
    if (left() < 4) return false;
    v = GetU32LE(in_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t& v) {
    if (left() < 8) return false;
    v = GetU64LE(in_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool I64(int64_t& v) {
    uint64_t x;
    if (!U64(x)) return false;
    std::memcpy(&v, &x, sizeof(v));
    return true;
  }
  // `n` bytes as a view into the input.
  bool Bytes(size_t n, std::string_view& v) {
    if (left() < n) return false;
    v = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Str8(std::string_view& v) {
    uint8_t n;
    return U8(n) && Bytes(n, v);
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace outpost::sync::wire

#endif  // OUTPOST_SYNC_WIRE_H_
