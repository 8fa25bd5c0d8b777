#include "engine/onnx/counting_allocator.h"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

// ASan replaces operator new and delete itself, and memory that crosses between its
// versions and ours is reported as a mismatch; under ASan nothing is replaced and tests that
// count allocations skip (the release build runs them).
#if defined(__SANITIZE_ADDRESS__)
#define OUTPOST_COUNTING_ALLOCATOR 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OUTPOST_COUNTING_ALLOCATOR 0
#endif
#endif
#ifndef OUTPOST_COUNTING_ALLOCATOR
#define OUTPOST_COUNTING_ALLOCATOR 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};

[[maybe_unused]] void* Allocate(size_t n, size_t align) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

namespace outpost::engine::onnx::testing {

bool AllocationCountingAvailable() { return OUTPOST_COUNTING_ALLOCATOR == 1; }

CountAllocations::CountAllocations(int64_t* count) : count_(count) {
  g_allocations = 0;
  g_counting = true;
}

CountAllocations::~CountAllocations() {
  g_counting = false;
  *count_ = g_allocations.load();
}

}  // namespace outpost::engine::onnx::testing

#if OUTPOST_COUNTING_ALLOCATOR
void* operator new(size_t n) { return Allocate(n, 0); }
void* operator new[](size_t n) { return Allocate(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
#endif  // OUTPOST_COUNTING_ALLOCATOR
