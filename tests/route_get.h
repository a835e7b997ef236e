// Asking the admin router directly, without a server: the answer's body to
// GET `path`?`query`, which must be a 200.
#ifndef LOCKPROF_TESTS_ROUTE_GET_H_
#define LOCKPROF_TESTS_ROUTE_GET_H_

#include <string>

#include "gtest/gtest.h"
#include "lockprof/server/handlers/admin_router.h"
#include "lockprof/server/handlers/query_params.h"

namespace lockprof::testing {

inline std::string RouteGet(const std::string& path, const std::string& query = "") {
  server::Request req;
  req.path = path;
  req.query = query;
  if (!query.empty()) req.params = server::DecodeQuery(query);
  server::PprofOptions options;
  const server::Response r = server::RouteAdminRequest(req, options);
  EXPECT_EQ(r.status, 200) << path << "?" << query << ": " << r.body;
  return r.body;
}

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_ROUTE_GET_H_
