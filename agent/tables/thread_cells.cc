#include "lockprof/agent/tables/thread_cells.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/thread_records.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::agent {

namespace {

struct Cell {
  // The bound target; nullptr while the cell is free (never used yet).
  std::atomic<void*> target{nullptr};
  // Owner-only fields (handed over with the block).
  CellMoveFn move = nullptr;
  uint32_t hits = 0;  // Events since the last rebind.
  // Written only by the block's owner, read by readers.
  std::atomic<int64_t> values[kCellValues] = {};
};

// On lines of its own: no other thread's block shares one.
struct alignas(64) Block {
  // Odd while the owner moves a cell's values into its target.
  std::atomic<uint32_t> seq{0};
  std::atomic<bool> in_use{true};
  std::atomic<uint32_t> generation{0};  // ForkGeneration() of the owner.
  std::atomic<Block*> next{nullptr};
  uint32_t misses = 0;  // Owner only: events since the last rebind with no cell.
  Cell cells[kCellsPerBlock];

  bool Stale() const { return generation.load(std::memory_order_relaxed) != ForkGeneration(); }
};

// Every block ever allocated, newest first; never freed, so readers walk it
// without a lock.
std::atomic<Block*> g_blocks{nullptr};

// Set once this thread's block went back at its exit: later events (another
// key's destructor that records) go to the targets directly.
thread_local bool t_exited = false;

Block*& Mine() { return *reinterpret_cast<Block**>(&tls_state.cells); }

// Hands this thread's block back when it exits (thread_exit_key.h).
void ReleaseBlock(void* p) {
  static_cast<Block*>(p)->in_use.store(false, std::memory_order_release);
  Mine() = nullptr;
  t_exited = true;
}

// Made when the library loads (thread_exit_key.h says why).
[[maybe_unused]] const bool g_block_key_made = ThreadExitKey<ReleaseBlock>().has_value();

// In a fork()ed child, before any of its code runs: the forking thread's
// block becomes the child's, with its values. Renewed here, not at the
// thread's next event: until then it would look like one of the parent's
// other threads' blocks (Stale), and a new thread of the child could claim
// it and add to it alongside the forking thread, whose Mine() still points
// to it (two writers of owner-only cells lose values).
void RenewBlockInChild() {
  if (Block* b = Mine()) b->generation.store(ForkGeneration(), std::memory_order_relaxed);
}

[[maybe_unused]] const bool g_fork_handler = (OnForkChild(&RenewBlockInChild), true);

// Claims a free block (or one of a parent's other threads', in a fork()ed
// child), or allocates one; nullptr if this thread cannot own one.
Block* ClaimBlock() {
  Block* b = ClaimThreadRecord<Block, ReleaseBlock>(&g_blocks, t_exited);
  if (b == nullptr) return nullptr;
  // A parent's thread may have been inside a move when the process forked:
  // its count stays odd in the child. The move is lost (its cell's values
  // may be counted twice or not at all), but readers must not wait for it.
  const uint32_t seq = b->seq.load(std::memory_order_relaxed);
  if (seq & 1) b->seq.store(seq + 1, std::memory_order_release);
  b->generation.store(ForkGeneration(), std::memory_order_relaxed);
  return b;
}

inline void Bump(Cell& c, int i, int64_t d) {
  c.values[i].store(WrappingAdd(c.values[i].load(std::memory_order_relaxed), d),
                    std::memory_order_relaxed);
}

void AddDirect(void* target, CellMoveFn move, int i, int64_t di, int j, int64_t dj) {
  int64_t values[kCellValues] = {};
  values[i] = di;
  values[j] = dj;
  move(target, values);
}

std::atomic<void (*)()> g_move_hook{nullptr};

// Moves the least-used cell's values into its target and binds it to
// `target`, as a seqlock writer: readers that overlap retry.
void Rebind(Block* b, void* target, CellMoveFn move) {
  Cell* victim = &b->cells[0];
  for (Cell& c : b->cells) {
    if (c.hits < victim->hits) victim = &c;
  }
  const uint32_t seq = b->seq.load(std::memory_order_relaxed);
  b->seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  int64_t values[kCellValues];
  for (int k = 0; k < kCellValues; ++k) {
    values[k] = victim->values[k].load(std::memory_order_relaxed);
    victim->values[k].store(0, std::memory_order_relaxed);
  }
  // Zeroed before they reach the target: a reader that gives up waiting
  // for this move (ReadWithCells) and sees the target's new values also
  // sees the zeros, so it misses these values, never counts them twice.
  std::atomic_thread_fence(std::memory_order_release);
  if (void (*hook)() = g_move_hook.load(std::memory_order_relaxed)) hook();
  victim->move(victim->target.load(std::memory_order_relaxed), values);
  victim->move = move;
  victim->target.store(target, std::memory_order_relaxed);
  b->seq.store(seq + 2, std::memory_order_release);
  for (Cell& c : b->cells) c.hits = 0;
  b->misses = 0;
}

}  // namespace

void AddToCell(void* target, CellMoveFn move, int i, int64_t di, int j, int64_t dj) {
  Block* b = Mine();
  if (__builtin_expect(b == nullptr, 0)) {
    b = ClaimBlock();
    Mine() = b;
    if (b == nullptr) return AddDirect(target, move, i, di, j, dj);
  }
  Cell* free_cell = nullptr;
  for (Cell& c : b->cells) {
    void* bound = c.target.load(std::memory_order_relaxed);
    if (bound == target) {
      Bump(c, i, di);
      Bump(c, j, dj);
      ++c.hits;
      return;
    }
    if (bound == nullptr && free_cell == nullptr) free_cell = &c;
  }
  if (free_cell != nullptr) {
    // Its values are all zero: published bound, then added to.
    free_cell->move = move;
    free_cell->hits = 1;
    free_cell->target.store(target, std::memory_order_release);
    Bump(*free_cell, i, di);
    Bump(*free_cell, j, dj);
    return;
  }
  AddDirect(target, move, i, di, j, dj);
  if (++b->misses >= kMissesPerRebind) Rebind(b, target, move);
}

void ReadWithCells(const void* lo, const void* hi, const std::function<void()>& read_shared,
                   std::vector<CellValues>* cells) {
  // A move takes nanoseconds, unless its thread is preempted in the middle
  // of it: retried for up to this long, then taken as it is.
  constexpr auto kPatience = std::chrono::milliseconds(10);
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  std::vector<uint32_t> seqs;
  for (;;) {
    const bool last = std::chrono::steady_clock::now() >= give_up;
    // Blocks added after this point hold only values added after it.
    Block* const head = g_blocks.load(std::memory_order_acquire);
    seqs.clear();
    bool busy = false;
    for (Block* b = head; b != nullptr; b = b->next.load(std::memory_order_acquire)) {
      const uint32_t seq = b->seq.load(std::memory_order_acquire);
      busy |= (seq & 1) != 0 && !b->Stale();
      seqs.push_back(seq);
    }
    if (busy && !last) {
      sched_yield();
      continue;
    }
    read_shared();
    // Pairs with the move's fence: see Rebind.
    std::atomic_thread_fence(std::memory_order_acquire);
    cells->clear();
    for (Block* b = head; b != nullptr; b = b->next.load(std::memory_order_acquire)) {
      for (const Cell& c : b->cells) {
        const void* t = c.target.load(std::memory_order_acquire);
        if (t == nullptr || t < lo || t >= hi) continue;
        CellValues v;
        v.target = t;
        for (int k = 0; k < kCellValues; ++k)
          v.values[k] = c.values[k].load(std::memory_order_relaxed);
        cells->push_back(v);
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    size_t n = 0;
    bool moved = false;
    for (Block* b = head; b != nullptr; b = b->next.load(std::memory_order_acquire)) {
      moved |= b->seq.load(std::memory_order_relaxed) != seqs[n++];
    }
    if (!moved || last) return;
  }
}

size_t CellBlocks() {
  size_t n = 0;
  for (Block* b = g_blocks.load(std::memory_order_acquire); b != nullptr;
       b = b->next.load(std::memory_order_acquire)) {
    ++n;
  }
  return n;
}

void SetCellMoveHookForTesting(void (*hook)()) { g_move_hook.store(hook); }

}  // namespace lockprof::agent
