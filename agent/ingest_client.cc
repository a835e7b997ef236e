#include "lockprof/agent/ingest_client.h"

#include <httplib.h>

namespace lockprof::agent {

namespace {
constexpr size_t kMaxBodyKept = 512;
constexpr char kUserAgent[] = "lockprof-uploader/0.1";
}  // namespace

struct IngestClient::Impl {
  httplib::Client client;
  httplib::Headers headers;

  explicit Impl(const std::string& origin) : client(origin) {}
};

IngestClient::IngestClient(const pyroscope::Endpoint& endpoint,
                           std::vector<std::pair<std::string, std::string>> headers,
                           std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(endpoint.Origin())) {
  impl_->client.set_connection_timeout(timeout);
  impl_->client.set_read_timeout(timeout);
  impl_->client.set_write_timeout(timeout);
  impl_->client.set_follow_location(false);
  impl_->client.set_keep_alive(false);
  impl_->headers.emplace("User-Agent", kUserAgent);
  for (auto& [k, v] : headers) impl_->headers.emplace(std::move(k), std::move(v));
}

IngestClient::~IngestClient() = default;

PostOutcome IngestClient::Post(const std::string& path_and_query,
                               const pyroscope::MultipartBody& body) {
  PostOutcome out;
  httplib::Result res = impl_->client.Post(path_and_query.c_str(), impl_->headers, body.body,
                                           body.content_type.c_str());
  if (!res) {
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body.substr(0, kMaxBodyKept);
  while (!out.body.empty() && (out.body.back() == '\n' || out.body.back() == '\r')) {
    out.body.pop_back();
  }
  out.location = res->get_header_value("Location");
  return out;
}

void IngestClient::Abort() { impl_->client.stop(); }

}  // namespace lockprof::agent
