// Fuzz target: ParseElfBytes on arbitrary bytes (the binary given to `outpost image build`
// and the libraries found for it are read with it) must return a Status and never crash,
// hang or read outside the input. Every other input gets a valid ELF64 little-endian
// identification, so that the fuzzer spends its time past the magic.
#include <cstddef>
#include <cstdint>
#include <string>

#include "image/elf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 20) return 0;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (size >= 64 && (data[0] & 1) != 0) bytes.replace(0, 6, "\177ELF\2\1", 6);
  outpost::image::ParseElfBytes(bytes).status().IgnoreError();
  return 0;
}
