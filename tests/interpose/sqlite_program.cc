// A program that no one here wrote the locking of: threads hammering one
// shared SQLite connection (serialized mode: SQLite's own recursive pthread
// mutex serialises them), for interpose_test. Prints "ready" when done and
// sleeps until killed, so that the test can read its profiles.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <thread>
#include <vector>

int main() {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(":memory:", &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite3_open_v2 failed\n");
    return 1;
  }
  sqlite3_exec(db, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)", nullptr, nullptr, nullptr);
  constexpr int kThreads = 4, kOps = 3000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([db, t] {
      for (int i = 0; i < kOps; ++i) {
        char sql[160];
        std::snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO kv VALUES(%d, hex(randomblob(64)))",
                      (t * kOps + i) % 500);
        sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
        sqlite3_exec(db, "SELECT count(*), max(length(v)) FROM kv", nullptr, nullptr, nullptr);
      }
    });
  }
  for (auto& th : threads) th.join();
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &st, nullptr);
  sqlite3_step(st);
  std::printf("rows=%d\nready\n", sqlite3_column_int(st, 0));
  sqlite3_finalize(st);
  std::fflush(stdout);
  for (;;) pause();
}
