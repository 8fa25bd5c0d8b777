// Little-endian byte writing and bounds-checked reading for sync/'s binary formats
// (FORMAT.md). The reader never reads past its input: every Read* returns false instead, and
// the caller turns that into its format's "truncated" reason. Thread-compatible.
#ifndef OUTPOST_SYNC_WIRE_H_
#define OUTPOST_SYNC_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace outpost::sync::wire {

inline void PutU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void PutU16(std::string& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
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
    uint64_t x;
    if (!Le(2, x)) return false;
    v = static_cast<uint16_t>(x);
    return true;
  }
  bool U32(uint32_t& v) {
    uint64_t x;
    if (!Le(4, x)) return false;
    v = static_cast<uint32_t>(x);
    return true;
  }
  bool U64(uint64_t& v) { return Le(8, v); }
  bool I64(int64_t& v) {
    uint64_t x;
    if (!Le(8, x)) return false;
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
  bool Le(int n, uint64_t& v) {
    if (left() < static_cast<size_t>(n)) return false;
    v = 0;
    for (int i = 0; i < n; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += n;
    return true;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace outpost::sync::wire

#endif  // OUTPOST_SYNC_WIRE_H_
