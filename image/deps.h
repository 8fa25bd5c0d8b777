// The shared libraries a binary loads, found as the dynamic loader finds them
// (image/FORMAT.md section 4): DT_NEEDED names, breadth first, looked up in Debian's library
// folders. Reads only the files' headers; runs nothing. Thread-safe (no state).
#ifndef OUTPOST_IMAGE_DEPS_H_
#define OUTPOST_IMAGE_DEPS_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "image/elf.h"

namespace outpost::image {

struct ResolvedLibrary {
  std::string name;       // as DT_NEEDED names it ("libz.so.1")
  std::string host_path;  // where it was found ("/lib/x86_64-linux-gnu/libz.so.1")
  std::string needed_by;  // the first file that named it
};

// The folders searched, in order: /lib/<triplet>, /usr/lib/<triplet>, /lib, /usr/lib.
std::vector<std::string> DefaultLibraryDirs(const std::string& triplet);

// Every library `binary` (parsed from `binary_path`) needs, directly or through another
// library, each once, in the order found. A name is taken from the first folder of `dirs`
// holding a regular ELF file (links followed) of the binary's machine. NotFound (reason
// "library_not_found") naming the library and who needs it when none holds it; ELF errors of
// a library found, with its path.
Result<std::vector<ResolvedLibrary>> ResolveSharedLibraries(const std::string& binary_path,
                                                            const ElfInfo& binary,
                                                            const std::vector<std::string>& dirs);

}  // namespace outpost::image

#endif  // OUTPOST_IMAGE_DEPS_H_
