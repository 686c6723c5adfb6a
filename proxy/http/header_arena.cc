#include "proxy/http/header_arena.h"

#include <algorithm>
#include <cstdlib>

namespace meshtel::proxy {

HeaderArena::HeaderArena(size_t first_block, size_t retain_limit)
    : first_block_(RoundUp(std::max<size_t>(first_block, kGranule), kGranule)),
      retain_limit_(retain_limit) {}

HeaderArena::~HeaderArena() {
  for (Block* block = current_; block != nullptr;) {
    Block* const previous = block->previous;
    std::free(block);
    block = previous;
  }
}

size_t HeaderArena::bytes_used() const noexcept {
  if (current_ == nullptr) return 0;
  return used_in_earlier_blocks_ + static_cast<size_t>(next_ - current_->data());
}

void* HeaderArena::AllocateSlow(size_t size, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw std::bad_alloc();
  const auto aligned_in_current = [&]() -> char* {
    if (current_ == nullptr) return nullptr;
    const uintptr_t at = RoundUp(reinterpret_cast<uintptr_t>(next_), std::max(alignment, kGranule));
    if (at > reinterpret_cast<uintptr_t>(end_) || size > reinterpret_cast<uintptr_t>(end_) - at) {
      return nullptr;
    }
    next_ = reinterpret_cast<char*>(at + size);
    return reinterpret_cast<char*>(at);
  };
  if (char* const p = aligned_in_current()) return p;
  // A new block: twice the current one, or what this allocation needs (with room to align it).
  const size_t padding = alignment > kGranule ? alignment - kGranule : 0;
  if (size > kMaxBytes || padding > kMaxBytes) throw std::bad_alloc();
  size_t capacity = current_ == nullptr ? first_block_ : current_->size * 2;
  capacity = RoundUp(std::max(capacity, size + padding), kGranule);
  void* const raw = std::malloc(sizeof(Block) + capacity);
  if (raw == nullptr) throw std::bad_alloc();
  if (current_ != nullptr) used_in_earlier_blocks_ += static_cast<size_t>(next_ - current_->data());
  current_ = ::new (raw) Block{current_, capacity};
  next_ = current_->data();
  end_ = next_ + capacity;
  reserved_ += capacity;
  ++blocks_allocated_;
  return aligned_in_current();  // fits: the block was sized for it
}

void HeaderArena::Reset() noexcept {
  const size_t keep_limit = std::max(first_block_, retain_limit_);
  Block* keep = nullptr;
  for (Block* block = current_; block != nullptr; block = block->previous) {
    if (block->size <= keep_limit && (keep == nullptr || block->size > keep->size)) keep = block;
  }
  for (Block* block = current_; block != nullptr;) {
    Block* const previous = block->previous;
    if (block != keep) {
      reserved_ -= block->size;
      std::free(block);
    }
    block = previous;
  }
  current_ = keep;
  used_in_earlier_blocks_ = 0;
  if (keep == nullptr) {
    next_ = end_ = nullptr;
    return;
  }
  keep->previous = nullptr;
  next_ = keep->data();
  end_ = next_ + keep->size;
}

}  // namespace meshtel::proxy
