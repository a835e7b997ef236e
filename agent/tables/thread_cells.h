// ThreadCells: per-thread accumulators in front of shared atomic counters.
//
// Every recorded event adds to a few counters that every thread recording
// the same lock shares: a profile entry's two values, the lock's wait or
// hold histogram, a samples counter. At every rate at 1 that is each
// critical section, and each of those atomic adds moves the counter's cache
// line from the core that last added to it: on two cores the adds cost more
// than the rest of the event, and on many cores the line serialises the
// recording threads the way a second lock would.
//
// So a thread adds into a cell of its own instead: a plain load and store
// on a line no other thread writes. A cell is bound to one target (the
// shared counters it stands for); readers add every cell bound to a target
// to the target's own values, so nothing is deferred: a value is visible to
// the next read as soon as it is added, whether or not its thread ever
// records again.
//
// Each thread that records owns one block of kCellsPerBlock cells. Blocks
// are never freed: at thread exit a block goes back to a free pool with its
// cells, bindings and values, and the next thread to record continues it.
// A thread whose event has no cell and no free one adds to the target
// directly (the atomic add of old); after kMissesPerRebind such events it
// rebinds its least-used cell to the target that missed, first moving the
// cell's values into the cell's old target. A move is the only time values
// leave a cell, and the block's sequence count is odd while it happens:
// readers (ReadWithCells) retry a read that a move overlapped, so each
// value is counted exactly once, in the cell or in the target.
//
// Memory: one block (kCellsPerBlock * ~230 bytes, 2 KB) per thread that records
// at the same time, at most; a fork()ed child reclaims its parent's other
// threads' blocks.
#ifndef LOCKPROF_AGENT_TABLES_THREAD_CELLS_H_
#define LOCKPROF_AGENT_TABLES_THREAD_CELLS_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace lockprof::agent {

// a + b modulo 2^64. Cumulative values wrap instead of overflowing (signed
// overflow is undefined): a key that a thousand threads wait at for good
// gains 2^63 ns in about 107 days. Differences of them are taken modulo
// 2^64 too (delta.h), and stay exact across a wrap.
inline int64_t WrappingAdd(int64_t a, int64_t b) { return int64_t(uint64_t(a) + uint64_t(b)); }

// Values per cell: the most any target needs, a lock's histogram (its 25
// buckets and its sum; lock_metrics.cc asserts that it fits).
inline constexpr int kCellValues = 26;
inline constexpr int kCellsPerBlock = 8;
inline constexpr int kMissesPerRebind = 64;

// Adds values (dense, kCellValues of them) into the shared counters at
// `target`. Supplied by the owner of the targets; it must stay valid, and
// so must the targets, for the life of the process.
using CellMoveFn = void (*)(void* target, const int64_t* values);

// A cell as a reader sees it.
struct CellValues {
  const void* target;
  int64_t values[kCellValues];
};

// Adds `di` to value i and `dj` to value j (i != j) for `target`: into
// this thread's cell for it, or through `move`. Lock-free; never waits.
// Call it with the recorder's scope held (it may allocate a block).
void AddToCell(void* target, CellMoveFn move, int i, int64_t di, int j, int64_t dj);

// A read of shared counters that counts each value once. Calls
// `read_shared` (which reads the targets' own values, replacing whatever an
// earlier call of it produced: it may be called again) and sets *cells to
// every cell bound to a target in [lo, hi), such that the two together
// count every value added before the call exactly once. Never blocks a
// recording thread: a read overlapped by a move is retried, for up to 10 ms
// (a move takes nanoseconds, unless its thread is preempted in it), then
// taken as it is: it then misses the moving cell's values, never counts
// them twice.
void ReadWithCells(const void* lo, const void* hi, const std::function<void()>& read_shared,
                   std::vector<CellValues>* cells);

// Blocks allocated so far (each thread that recorded at once has one).
size_t CellBlocks();

// For tests: `hook` (nullptr for none) runs on the moving thread in the
// middle of every move, its values out of the cell and not yet in the
// target, as a thread preempted there would be.
void SetCellMoveHookForTesting(void (*hook)());

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_TABLES_THREAD_CELLS_H_
