// CRC32C (Castagnoli), the per-record checksum of the outbox (FORMAT.md section 4).
#ifndef OUTPOST_OUTBOX_CHECKSUM_H_
#define OUTPOST_OUTBOX_CHECKSUM_H_

#include <cstdint>
#include <string_view>

namespace outpost::outbox {

// Extends `crc` (the value returned by an earlier call, or 0 to start) over `data`.
// Crc32c(0, "123456789") == 0xE3069283. Uses the CPU's crc32 instruction where it exists.
// Thread-safe.
uint32_t Crc32c(uint32_t crc, std::string_view data);

}  // namespace outpost::outbox

#endif  // OUTPOST_OUTBOX_CHECKSUM_H_
