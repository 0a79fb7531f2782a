// libcurl client, verified resumable downloads and the blob lock (see hub_http.h and hub.h).
#include "io/hub_http.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "core/strings.h"
#include "xlt/core/file.h"
#include "xlt/core/lock.h"
#include "xlt/core/progress.h"
#include "xlt/version.h"

namespace xlt::io {
using xlt::detail::ascii_lower;
namespace fs = std::filesystem;

namespace {

std::string to_hex(const unsigned char* p, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

// RAII over an EVP SHA-256 context.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { reset(); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void reset() {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
      throw Error("OpenSSL: cannot initialise SHA-256");
    }
  }
  void update(const void* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    return to_hex(md, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Hashes a file's first `limit` bytes (all when -1) into `sha`.
void hash_prefix(const fs::path& path, int64_t limit, Sha256& sha) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot read " + path.string() + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  int64_t left = limit < 0 ? INT64_MAX : limit;
  while (left > 0) {
    ssize_t n =
        ::read(fd, buf.data(), static_cast<std::size_t>(std::min<int64_t>(left, buf.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw IoError("cannot read " + path.string() + ": " + std::strerror(e));
    }
    if (n == 0) break;
    sha.update(buf.data(), static_cast<std::size_t>(n));
    left -= n;
  }
  ::close(fd);
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
    --e;
  return std::string(s.substr(b, e - b));
}

size_t header_callback(char* buf, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(buf, size * n);
  // Each response of a redirect chain starts with its status line: keep only the last one's.
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    (*headers)[ascii_lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t body_to_string(char* buf, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > (64u << 20)) return 0;  // an API answer is never this large
  body->append(buf, size * n);
  return size * n;
}

std::string host_of(const std::string& url) {
  auto scheme = url.find("://");
  std::size_t b = scheme == std::string::npos ? 0 : scheme + 3;
  std::size_t e = url.find('/', b);
  return url.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

void ensure_curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

int64_t free_bytes(const fs::path& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

[[noreturn]] void throw_disk_full(const fs::path& path, int64_t need) {
  int64_t avail = free_bytes(path.parent_path());
  throw IoError("disk full: cannot write " + path.string() + " (" +
                (need > 0 ? Progress::human_bytes(static_cast<double>(need)) + " needed, " : "") +
                Progress::human_bytes(static_cast<double>(std::max<int64_t>(0, avail))) +
                " free); free some space and run the command again: the download resumes");
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  Sha256 sha;
  sha.update(data.data(), data.size());
  return sha.hex();
}

std::string sha256_file(const fs::path& path) {
  Sha256 sha;
  hash_prefix(path, -1, sha);
  return sha.hex();
}

namespace detail {

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string url_quote(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

HttpClient::HttpClient(HttpSettings settings) : settings_(std::move(settings)) {
  ensure_curl_global();
  curl_ = curl_easy_init();
  if (!curl_) throw Error("libcurl: curl_easy_init failed");
}

HttpClient::~HttpClient() {
  if (header_list_) curl_slist_free_all(header_list_);
  if (curl_) curl_easy_cleanup(curl_);
}

void HttpClient::prepare(const std::string& url, const std::vector<std::string>& headers,
                         std::map<std::string, std::string>* response_headers) {
  // Resetting options keeps the handle's open connections for reuse.
  curl_easy_reset(curl_);
  if (header_list_) curl_slist_free_all(header_list_);
  header_list_ = nullptr;
  // Sizes and hashes refer to the stored bytes: never let a server compress them in transit.
  header_list_ = curl_slist_append(header_list_, "Accept-Encoding: identity");
  for (const auto& h : headers) header_list_ = curl_slist_append(header_list_, h.c_str());
  errbuf_[0] = '\0';
  long timeout_ms = static_cast<long>(settings_.timeout_seconds * 1000);
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, header_list_);
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf_);
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, "xlt/" XLT_VERSION);
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  // A transfer that stalls (under 1 byte/s) for the timeout is aborted, then resumed.
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME,
                   std::max(1L, static_cast<long>(settings_.timeout_seconds)));
  curl_easy_setopt(curl_, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl_, CURLOPT_BUFFERSIZE, 256L * 1024);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
  curl_easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  if (response_headers) {
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, header_callback);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, response_headers);
  }
}

HttpResponse HttpClient::perform(const std::string& url, const std::vector<std::string>& headers,
                                 bool head) {
  HttpResponse r;
  r.url = url;
  prepare(url, headers, &r.headers);
  if (head) {
    curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 1L);
  }
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, body_to_string);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
  CURLcode rc = curl_easy_perform(curl_);
  if (rc != CURLE_OK) throw_transport_error(rc, url);
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

HttpResponse HttpClient::head(const std::string& url, const std::vector<std::string>& headers) {
  return perform(url, headers, true);
}

HttpResponse HttpClient::get(const std::string& url, const std::vector<std::string>& headers) {
  return perform(url, headers, false);
}

void HttpClient::throw_transport_error(CURLcode rc, const std::string& url) const {
  std::string reason = errbuf_[0] ? std::string(errbuf_) : curl_easy_strerror(rc);
  std::string msg;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
      msg = "cannot reach " + host_of(url) + " (" + reason + "): no network?";
      break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
      msg = "TLS error talking to " + host_of(url) + " (" + reason +
            "): check the system's CA certificates and any proxy";
      break;
    default:
      msg = "transfer from " + url + " failed (" + reason + ")";
  }
  if (!settings_.offline_hint.empty()) msg += " " + settings_.offline_hint;
  throw HubError(msg);
}

namespace {

// State shared with the libcurl write callback during one GET.
struct Sink {
  CURL* curl = nullptr;
  int fd = -1;
  Sha256* sha = nullptr;
  Progress* progress = nullptr;
  const std::map<std::string, std::string>* headers = nullptr;
  int64_t resume_from = 0;  // bytes already in the file when the request was sent
  int64_t size = 0;         // bytes in the file now
  int64_t received = 0;     // body bytes received in this request
  long status = 0;
  bool started = false;
  bool restarted = false;  // the server ignored Range: the file was truncated
  int write_errno = 0;
  std::string error_body;
};

bool content_range_starts_at(const std::map<std::string, std::string>& headers, int64_t offset) {
  auto it = headers.find("content-range");
  if (it == headers.end()) return false;
  // "bytes START-END/TOTAL"
  const std::string& v = it->second;
  auto sp = v.find(' ');
  auto dash = v.find('-');
  if (sp == std::string::npos || dash == std::string::npos || dash < sp) return false;
  try {
    return std::stoll(v.substr(sp + 1, dash - sp - 1)) == offset;
  } catch (const std::exception&) {
    return false;
  }
}

size_t body_to_file(char* buf, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  std::size_t len = size * n;
  if (!s->started) {
    s->started = true;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
    bool restart = s->status == 200 && s->resume_from > 0;
    // A 206 for another offset than ours cannot be appended; take the whole file instead.
    if (s->status == 206 && !content_range_starts_at(*s->headers, s->resume_from)) return 0;
    if (restart) {
      if (::ftruncate(s->fd, 0) != 0) {
        s->write_errno = errno;
        return 0;
      }
      s->sha->reset();
      s->size = 0;
      s->restarted = true;
    }
  }
  if (s->status != 200 && s->status != 206) {
    if (s->error_body.size() < 4096) s->error_body.append(buf, std::min<std::size_t>(len, 4096));
    return len;
  }
  const char* p = buf;
  std::size_t left = len;
  while (left > 0) {
    ssize_t w = ::write(s->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      s->write_errno = errno;
      return 0;
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  s->sha->update(buf, len);
  s->size += static_cast<int64_t>(len);
  s->received += static_cast<int64_t>(len);
  if (s->progress) s->progress->set(s->size);
  return len;
}

bool retryable(CURLcode rc) {
  switch (rc) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

int64_t file_size_or_zero(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

[[noreturn]] void throw_http_status(const std::string& label, const std::string& url, long status,
                                    const std::string& body) {
  std::string msg =
      "downloading " + label + " from " + url + " failed: HTTP " + std::to_string(status);
  if (status == 401 || status == 403) {
    msg += " (access denied: if this needs a login, set HF_TOKEN to a token with read access)";
  } else if (status == 404) {
    msg += " (not found: check the URL)";
  }
  std::string b = trim(body.substr(0, 200));
  if (!b.empty()) msg += ": " + b;
  throw HubError(msg, status);
}

}  // namespace

UrlDownloadResult download_url_with(HttpClient& client, const UrlDownload& req) {
  auto t0 = std::chrono::steady_clock::now();
  UrlDownloadResult result;
  const fs::path& dest = req.dest;
  std::string label = req.label.empty() ? dest.filename().string() : req.label;
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) throw IoError("cannot create " + dest.parent_path().string() + ": " + ec.message());

  const bool shared_lock = !req.lock_path.empty();
  const fs::path lock_path = shared_lock ? req.lock_path : fs::path(dest.string() + ".lock");
  if (shared_lock) fs::create_directories(lock_path.parent_path());
  FileLock lock(lock_path, req.progress ? "downloading " + label : "", !shared_lock);
  if (fs::exists(dest)) {  // another process finished it while we waited, or a repeat call
    result.already_present = true;
    result.size = file_size_or_zero(dest);
    result.sha256 = sha256_file(dest);
    return result;
  }
  fs::path partial(dest.string() + ".incomplete");
  int64_t have = file_size_or_zero(partial);
  if (req.expected_size >= 0 && have > req.expected_size) {
    fs::remove(partial, ec);  // longer than the file can be: not a prefix of it
    have = 0;
  }
  if (req.expected_size > have) {
    int64_t avail = free_bytes(dest.parent_path());
    if (avail >= 0 && avail < req.expected_size - have) {
      throw_disk_full(dest, req.expected_size - have);
    }
  }

  int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot write " + partial.string() + ": " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};

  Sha256 sha;
  if (have > 0) hash_prefix(partial, have, sha);
  Progress progress(label, req.expected_size > 0 ? req.expected_size : 0, "B", req.progress);
  progress.set(have);
  if (have > 0)
    progress.set_postfix("resumed at " + Progress::human_bytes(static_cast<double>(have)));

  std::map<std::string, std::string> headers;
  Sink sink;
  sink.fd = fd;
  sink.sha = &sha;
  sink.progress = &progress;
  sink.headers = &headers;
  sink.size = have;
  bool done = req.expected_size >= 0 && have == req.expected_size;
  for (int attempt = 0; !done; ++attempt) {
    client.prepare(req.url, req.headers, &headers);
    CURL* curl = client.handle();
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_to_file);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    // CURLOPT_RANGE rather than CURLOPT_RESUME_FROM_LARGE: with the latter libcurl ends a 200
    // answer (a server that ignores Range) with CURLE_RANGE_ERROR before body_to_file can
    // start over from byte 0, as huggingface_hub does, and every later run failed the same way.
    const std::string range = std::to_string(sink.size) + "-";
    if (sink.size > 0) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
    sink.curl = curl;
    sink.resume_from = sink.size;
    sink.started = false;
    sink.status = 0;
    sink.error_body.clear();
    ++result.attempts;
    CURLcode rc = curl_easy_perform(curl);
    result.bytes_transferred += sink.received;
    sink.received = 0;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_WRITE_ERROR && sink.write_errno != 0) {
      if (sink.write_errno == ENOSPC || sink.write_errno == EDQUOT) {
        throw_disk_full(dest, req.expected_size > 0 ? req.expected_size - sink.size : 0);
      }
      throw IoError("cannot write " + partial.string() + ": " + std::strerror(sink.write_errno));
    }
    if (rc == CURLE_WRITE_ERROR && status == 206) {
      // The server answered another byte range than asked: start over from byte 0.
      if (::ftruncate(fd, 0) != 0) throw IoError("cannot truncate " + partial.string());
      sha.reset();
      sink.size = 0;
      continue;
    }
    if (rc == CURLE_OK) {
      if (status == 200 && sink.resume_from > 0 && !sink.started) {
        // The whole file in answer to a Range request, and it is empty: no body callback ran
        // to drop the partial bytes.
        if (::ftruncate(fd, 0) != 0) throw IoError("cannot truncate " + partial.string());
        sha.reset();
        sink.size = 0;
      }
      if (status == 416 && sink.size > 0) {
        // Our "remaining range" is empty or invalid: the partial file is complete or stale.
        if (req.expected_size < 0 || sink.size == req.expected_size) break;
        if (::ftruncate(fd, 0) != 0) throw IoError("cannot truncate " + partial.string());
        sha.reset();
        sink.size = 0;
        continue;
      }
      if (status != 200 && status != 206) {
        throw_http_status(label, req.url, status, sink.error_body);
      }
      done = true;
      break;
    }
    // A refused first connection is no network, not a dropped one: fail at once.
    bool dropped = retryable(rc) && !(attempt == 0 && rc == CURLE_COULDNT_CONNECT);
    if (dropped && attempt < req.max_retries) {
      if (req.progress)
        std::cerr << "xlt: " << label << ": connection lost at "
                  << Progress::human_bytes(static_cast<double>(sink.size)) << " ("
                  << (client.error_text()[0] ? client.error_text() : curl_easy_strerror(rc))
                  << "); resuming (" << attempt + 1 << "/" << req.max_retries << ")\n";
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2000, 100 << attempt)));
      continue;
    }
    try {
      client.throw_transport_error(rc, req.url);
    } catch (const HubError& e) {
      std::string more = sink.size > 0
                             ? " (" + std::to_string(sink.size) + " bytes kept in " +
                                   partial.string() + "; running the command again resumes)"
                             : "";
      throw HubError(e.what() + more);
    }
  }
  progress.finish();

  if (::fsync(fd) != 0)
    throw IoError("cannot fsync " + partial.string() + ": " + std::strerror(errno));
  std::string got = sha.hex();
  int64_t size = file_size_or_zero(partial);
  auto reject = [&](const std::string& what) {
    fs::remove(partial, ec);
    throw HubError(label + ": " + what + " (from " + req.url +
                   "); the download was deleted, nothing was stored under " + dest.string());
  };
  if (req.expected_size >= 0 && size != req.expected_size) {
    reject("size mismatch: expected " + std::to_string(req.expected_size) + " bytes, got " +
           std::to_string(size));
  }
  if (!req.expected_sha256.empty() && ascii_lower(req.expected_sha256) != got) {
    reject("checksum mismatch: expected sha256 " + ascii_lower(req.expected_sha256) + ", got " +
           got);
  }
  fs::rename(partial, dest, ec);
  if (ec)
    throw IoError("cannot move " + partial.string() + " to " + dest.string() + ": " + ec.message());
  fsync_path(dest.parent_path());
  result.size = size;
  result.sha256 = got;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace detail

UrlDownloadResult download_url(const UrlDownload& request) {
  detail::HttpClient client({request.timeout_seconds, request.offline_hint});
  return detail::download_url_with(client, request);
}

}  // namespace xlt::io
