// What the runtime image needs to know about an ELF file (image/FORMAT.md section 4): its
// machine, its program interpreter (the dynamic loader), the libraries it names in
// DT_NEEDED, and its section names (to check that debug sections are gone). Read from the
// program headers, bounded, with every offset checked: a damaged or hostile file gives a
// Status, never a crash. Only 64-bit little-endian ELF files are read. Thread-safe (no
// state).
#ifndef OUTPOST_IMAGE_ELF_H_
#define OUTPOST_IMAGE_ELF_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace outpost::image {

inline constexpr uint16_t kElfMachineX86_64 = 62;
inline constexpr uint16_t kElfMachineAarch64 = 183;

struct ElfInfo {
  uint16_t machine = 0;  // e_machine
  uint16_t type = 0;     // e_type: 2 executable, 3 shared object or PIE
  // PT_INTERP, without its NUL; empty for a library or a static binary.
  std::string interpreter;
  // DT_NEEDED names, in the file's order.
  std::vector<std::string> needed;
  // DT_SONAME; empty when absent.
  std::string soname;
  // Whether DT_RPATH or DT_RUNPATH is present.
  bool has_runpath = false;
  // Section names from the section headers (".text", ".debug_info"), in the file's order;
  // empty when the file has no section headers.
  std::vector<std::string> section_names;
};

// Reads `n` bytes at `offset` of the file; fewer only at the end of the file.
using ElfReadAt = std::function<Result<std::string>(uint64_t offset, size_t n)>;

// Parses an ELF file of `file_size` bytes through `read_at`. InvalidArgument (reason
// "elf_malformed") for a file that is not ELF or whose headers point outside it;
// Unimplemented (reason "elf_unsupported") for a 32-bit or big-endian file.
Result<ElfInfo> ParseElf(const ElfReadAt& read_at, uint64_t file_size);

// ParseElf over bytes in memory (the fuzz target's entry).
Result<ElfInfo> ParseElfBytes(std::string_view bytes);

// ParseElf over a file, read in pieces. NotFound when it is missing; I/O errors as
// ErrnoToStatus; the parse errors with the path as context.
Result<ElfInfo> ReadElfFile(const std::string& path);

// The Debian multiarch triplet ("x86_64-linux-gnu") and the OCI architecture ("amd64") of a
// machine; nullopt for a machine the image does not support.
std::optional<std::string> MultiarchTriplet(uint16_t machine);
std::optional<std::string> OciArchitecture(uint16_t machine);

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_ELF_H_
