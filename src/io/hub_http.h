// Private to xlt_io: the libcurl client behind hub downloads and dataset archives, the
// transfer-error messages, and the cross-process lock on a blob being downloaded.
#pragma once

#include <curl/curl.h>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "xlt/io/hub.h"

namespace xlt::io::detail {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; of the last response only
  std::string body;
  std::string url;  // the URL requested

  // "" when absent. `name` lower-case.
  std::string header(const std::string& name) const;
};

struct HttpSettings {
  double timeout_seconds = 10;
  std::string offline_hint;  // appended to "cannot reach" messages
};

// One libcurl easy handle: reusing it keeps the connection to the hub open between the HEAD and
// the GET of each file. Not thread-safe (one per thread/call).
class HttpClient {
 public:
  explicit HttpClient(HttpSettings settings);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // HEAD without following redirects (the caller reads Location itself).
  HttpResponse head(const std::string& url, const std::vector<std::string>& headers);
  // GET following redirects; the body is kept in memory (for API JSON and error pages).
  HttpResponse get(const std::string& url, const std::vector<std::string>& headers);

  // Sets the options every request shares; `headers` stay owned by the client until the next
  // call. Used by download_url to stream a body into a file.
  void prepare(const std::string& url, const std::vector<std::string>& headers,
               std::map<std::string, std::string>* response_headers);
  CURL* handle() { return curl_; }
  const HttpSettings& settings() const { return settings_; }
  const char* error_text() const { return errbuf_; }

  // A transfer that got no HTTP answer: names the host and the reason, and the offline hint.
  [[noreturn]] void throw_transport_error(CURLcode rc, const std::string& url) const;

 private:
  HttpResponse perform(const std::string& url, const std::vector<std::string>& headers, bool head);

  HttpSettings settings_;
  CURL* curl_ = nullptr;
  curl_slist* header_list_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {};
};

// Percent-encodes everything but unreserved characters (and '/' when keep_slash).
std::string url_quote(std::string_view s, bool keep_slash);

// Downloads through an existing client (see download_url in hub.h).
UrlDownloadResult download_url_with(HttpClient& client, const UrlDownload& request);

}  // namespace xlt::io::detail
