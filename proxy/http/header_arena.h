#pragma once
// HeaderArena, ArenaAllocator and HeaderFields: the memory of one connection's HTTP header fields.
//
// Beast's fields (http::basic_fields) allocate one block per field, and one more for a request's
// method and target or a response's reason, each from the allocator they were made with. With
// std::allocator that is a malloc and a free per field: about 15 per proxied request. A
// connection's parsers (its request's and the upstream's response) instead take their fields from
// the connection's HeaderArena through ArenaAllocator: an allocation is a pointer bump, freeing is
// nothing (the most recent allocation alone is taken back), and Reset() before the next request on
// the connection makes the whole arena free again.
//
// Memory: the first block (`first_block` bytes) is allocated on first use; when a block is full
// the next comes from malloc, twice the size of the one before (or the size asked for, if more).
// What one request can take is bounded by what its headers can hold: the parsers' header limits
// (60 KiB for requests and responses, each field of it as one allocation; trailers up to the
// 64 KiB read buffer, common/http_connection.h) plus the fields the proxy sets. Freed fields are
// not reused within a request, so a caller must not erase and set fields without bound on one
// message. Reset() keeps one block, the largest not over max(first_block, retain_limit), and frees
// the others, so between the requests of a keep-alive connection the arena holds at most
// max(first_block, retain_limit) bytes (plus a block header), whatever an earlier request needed.
//
// Threading: none; an arena is used from one thread at a time (the connection's IO thread).
// Ownership: the arena owns its blocks; allocators are non-owning handles to it. Everything
// allocated from an arena is invalid after its Reset() or destruction: destroy the fields (the
// parsers, the messages) first.
// Errors: Allocate throws std::bad_alloc when malloc fails or the size overflows, as operator
// new does.

#include <cstddef>
#include <cstdint>
#include <new>

#include "boost/beast/http/fields.hpp"

namespace meshtel::proxy {

class HeaderArena {
 public:
  static constexpr size_t kDefaultFirstBlock = 4 * 1024;
  static constexpr size_t kDefaultRetainLimit = 16 * 1024;

  explicit HeaderArena(size_t first_block = kDefaultFirstBlock,
                       size_t retain_limit = kDefaultRetainLimit);
  ~HeaderArena();
  HeaderArena(const HeaderArena&) = delete;
  HeaderArena& operator=(const HeaderArena&) = delete;

  // `bytes` aligned to `alignment` (a power of two). Never null.
  void* Allocate(size_t bytes, size_t alignment) {
    // Sizes are kept in multiples of kGranule, so that the most recent allocation can be
    // recognised in Deallocate.
    if (bytes > kMaxBytes) throw std::bad_alloc();
    const size_t size = RoundUp(bytes == 0 ? 1 : bytes, kGranule);
    if (alignment <= kGranule && size <= static_cast<size_t>(end_ - next_)) {
      char* const p = next_;
      next_ += size;
      return p;
    }
    return AllocateSlow(size, alignment);
  }

  // Takes `p` back if it is the most recent allocation (`bytes` as it was asked for); anything
  // else waits for Reset().
  void Deallocate(void* p, size_t bytes) noexcept {
    const size_t size = RoundUp(bytes == 0 ? 1 : bytes, kGranule);
    if (static_cast<char*>(p) + size == next_) next_ = static_cast<char*>(p);
  }

  // Makes the whole arena free again (see Memory above). Everything allocated before is invalid.
  void Reset() noexcept;

  // Bytes held in blocks now (their capacity, block headers left out).
  size_t bytes_reserved() const noexcept { return reserved_; }
  // Bytes handed out since the last Reset() (with alignment padding), not counting those
  // taken back.
  size_t bytes_used() const noexcept;
  // Blocks allocated from malloc since construction (for tests: none after the first requests
  // of a connection whose headers keep their size).
  uint64_t blocks_allocated() const noexcept { return blocks_allocated_; }

 private:
  struct Block {
    Block* previous;  // the block allocated before this one, if still held
    size_t size;      // capacity after this header
    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
  };
  static constexpr size_t kGranule = alignof(std::max_align_t);
  static constexpr size_t kMaxBytes = size_t{1} << 40;
  static_assert(sizeof(Block) % kGranule == 0);

  static constexpr size_t RoundUp(size_t n, size_t to) { return (n + to - 1) & ~(to - 1); }
  void* AllocateSlow(size_t size, size_t alignment);

  const size_t first_block_;
  const size_t retain_limit_;
  Block* current_ = nullptr;  // the block allocations come from; earlier ones via `previous`
  char* next_ = nullptr;      // the first free byte of current_
  char* end_ = nullptr;       // the end of current_
  size_t reserved_ = 0;
  size_t used_in_earlier_blocks_ = 0;  // bytes used in the blocks before current_
  uint64_t blocks_allocated_ = 0;
};

// A standard allocator handing out memory of one HeaderArena. Copies (and rebound copies) use the
// same arena and compare equal; it is not default-constructible, so no container can end up with
// an allocator that has no arena.
template <typename T>
class ArenaAllocator {
 public:
  using value_type = T;

  explicit ArenaAllocator(HeaderArena& arena) noexcept : arena_(&arena) {}
  template <typename U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept  // NOLINT: implicit, as allocators are
      : arena_(&other.arena()) {}

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { arena_->Deallocate(p, n * sizeof(T)); }

  HeaderArena& arena() const noexcept { return *arena_; }

  template <typename U>
  friend bool operator==(const ArenaAllocator& a, const ArenaAllocator<U>& b) noexcept {
    return &a.arena() == &b.arena();
  }

 private:
  HeaderArena* arena_;
};

// The header fields of the proxy's parsed and forwarded messages.
using HeaderFields = boost::beast::http::basic_fields<ArenaAllocator<char>>;

}  // namespace meshtel::proxy
