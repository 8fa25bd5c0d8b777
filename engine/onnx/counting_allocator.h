// A counting replacement of the global operator new, for tests that assert a code path
// allocates nothing. Linking counting_allocator.cc into a test binary replaces operator
// new/delete for the whole binary; counting is off except inside a CountAllocations scope.
#ifndef OUTPOST_ENGINE_ONNX_COUNTING_ALLOCATOR_H_
#define OUTPOST_ENGINE_ONNX_COUNTING_ALLOCATOR_H_

#include <cstdint>

namespace outpost::engine::onnx::testing {

// False in sanitizer builds, where the global operator new is not replaced and nothing is
// counted; a test then skips.
bool AllocationCountingAvailable();

// Counts the allocations made by any thread while alive into *count (which it zeroes).
// Scopes must not nest or overlap.
class CountAllocations {
 public:
  explicit CountAllocations(int64_t* count);
  ~CountAllocations();
  CountAllocations(const CountAllocations&) = delete;
  CountAllocations& operator=(const CountAllocations&) = delete;

 private:
  int64_t* count_;
};

}  // namespace outpost::engine::onnx::testing

#endif  // OUTPOST_ENGINE_ONNX_COUNTING_ALLOCATOR_H_
