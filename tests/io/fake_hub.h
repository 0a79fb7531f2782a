// A fake Hugging Face hub for download tests: a small threaded HTTP/1.1 server on 127.0.0.1
// (ephemeral port) serving the repository listing API, resolve URLs (small files directly with a
// git-style ETag, LFS files as a 302 to a "CDN" path with X-Linked-Etag/X-Linked-Size), Range
// requests, plain files (dataset archives), a token check (401), 404s with X-Error-Code, and
// injected faults (a connection dropped mid-body, a corrupted body, a lying size, a server that
// ignores Range, an answer held back until the test releases it). Every request is logged so
// tests can count them. Header-only because the test CMake globs only *_test.cpp.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "xlt/io/hub.h"

namespace xlt::test {

struct LoggedRequest {
  std::string method, target, range, authorization;
};

class FakeHub {
 public:
  FakeHub() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      throw std::runtime_error("FakeHub: cannot listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakeHub() {
    release();
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
      workers.swap(workers_);
    }
    for (auto& t : workers) t.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // A repository whose `branches` all point at `commit`. Files ending in .safetensors, .bin or
  // .model are LFS files (redirected to the CDN, sha256 etag), as on the real hub.
  void add_repo(const std::string& repo_id, const std::string& commit,
                const std::map<std::string, std::string>& files,
                const std::vector<std::string>& branches = {"main"}) {
    std::lock_guard<std::mutex> g(mu_);
    Repo& r = repos_[repo_id];
    r.commit = commit;
    r.files = files;
    for (const auto& b : branches) r.refs[b] = commit;
    r.refs[commit] = commit;
    for (const auto& [name, content] : files) blobs_[xlt::io::sha256_hex(content)] = content;
  }
  // Requests for `old_id` get a 307 to the same path under `new_id` (a renamed repository).
  void rename_repo(const std::string& old_id, const std::string& new_id) {
    std::lock_guard<std::mutex> g(mu_);
    renamed_[old_id] = new_id;
  }
  // 401 unless "Authorization: Bearer <token>".
  void require_token(const std::string& repo_id, const std::string& token) {
    std::lock_guard<std::mutex> g(mu_);
    repos_[repo_id].token = token;
  }
  // A plain file at `path` (e.g. "/XNLI-1.0.zip"), with Range support.
  void add_raw(const std::string& path, const std::string& content) {
    std::lock_guard<std::mutex> g(mu_);
    raw_[path] = content;
  }
  // The next `times` GETs of a path starting with `prefix` send the headers and only
  // `after_bytes` bytes of the body, then close the connection.
  void drop_connection(const std::string& prefix, int64_t after_bytes, int times = 1) {
    std::lock_guard<std::mutex> g(mu_);
    drops_.push_back({prefix, after_bytes, times});
  }
  // GETs of paths starting with `prefix` get their last byte flipped.
  void corrupt(const std::string& prefix) {
    std::lock_guard<std::mutex> g(mu_);
    corrupt_.push_back(prefix);
  }
  // GETs of paths starting with `prefix` get the whole file (200) whatever their Range header
  // asks, as some mirrors and proxies answer.
  void ignore_range(const std::string& prefix) {
    std::lock_guard<std::mutex> g(mu_);
    ignore_range_.push_back(prefix);
  }
  // GETs of paths starting with `prefix` are logged at once but answered only after release():
  // keeps a download in flight while the test does something else.
  void hold(const std::string& prefix) {
    std::lock_guard<std::mutex> g(mu_);
    held_ = prefix;
    released_ = false;
  }
  void release() {
    {
      std::lock_guard<std::mutex> g(mu_);
      released_ = true;
    }
    held_cv_.notify_all();
  }
  // The resolve answer for `file` claims this X-Linked-Size.
  void lie_about_size(const std::string& file, int64_t size) {
    std::lock_guard<std::mutex> g(mu_);
    size_lies_[file] = size;
  }

  std::vector<LoggedRequest> requests() const {
    std::lock_guard<std::mutex> g(mu_);
    return log_;
  }
  // Requests whose method matches (or "" for any) and whose target contains `part`.
  int count(const std::string& method, const std::string& part = "") const {
    std::lock_guard<std::mutex> g(mu_);
    return static_cast<int>(std::count_if(log_.begin(), log_.end(), [&](const LoggedRequest& r) {
      return (method.empty() || r.method == method) && r.target.find(part) != std::string::npos;
    }));
  }
  void clear_log() {
    std::lock_guard<std::mutex> g(mu_);
    log_.clear();
  }

  // The etag the fake hub gives a small (non-LFS) file: 40 hex digits, like a git blob id.
  static std::string git_etag(const std::string& content) {
    return xlt::io::sha256_hex("blob " + content).substr(0, 40);
  }
  static bool is_lfs(const std::string& name) {
    auto ends = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    return ends(".safetensors") || ends(".bin") || ends(".model");
  }

 private:
  struct Repo {
    std::string commit, token;
    std::map<std::string, std::string> files, refs;
  };
  struct Drop {
    std::string prefix;
    int64_t after;
    int times;
  };
  struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool head = false;
    int64_t drop_after = -1;
  };

  void accept_loop() {
    while (!stopping_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      // Headers and body go out in separate writes: without this, Nagle + delayed ACK stall
      // every response by 40 ms.
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard<std::mutex> g(mu_);
      open_fds_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  static std::string url_decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }

  void serve(int fd) {
    std::string buf;
    char chunk[8192];
    for (;;) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return close_fd(fd);
        buf.append(chunk, static_cast<std::size_t>(n));
      }
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      std::istringstream in(head);
      LoggedRequest req;
      std::string version, line;
      in >> req.method >> req.target >> version;
      std::getline(in, line);
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon), value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        if (name == "range") req.range = value;
        if (name == "authorization") req.authorization = value;
      }
      Response r;
      {
        std::unique_lock<std::mutex> g(mu_);
        log_.push_back(req);
        r = route(req);
        if (req.method == "GET" && !held_.empty() && req.target.rfind(held_, 0) == 0)
          held_cv_.wait(g, [&] { return released_; });
      }
      if (!send_response(fd, r)) return close_fd(fd);
    }
  }

  void close_fd(int fd) {
    std::lock_guard<std::mutex> g(mu_);
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
    ::close(fd);
  }

  static bool send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  // Returns false when the connection must be closed (after a dropped body).
  static bool send_response(int fd, const Response& r) {
    static const std::map<int, std::string> kReason = {
        {200, "OK"},           {206, "Partial Content"}, {302, "Found"},
        {401, "Unauthorized"}, {404, "Not Found"},       {416, "Range Not Satisfiable"}};
    std::ostringstream h;
    auto reason = kReason.count(r.status) ? kReason.at(r.status) : "Status";
    h << "HTTP/1.1 " << r.status << " " << reason << "\r\n";
    for (const auto& [k, v] : r.headers) h << k << ": " << v << "\r\n";
    h << "Content-Length: " << r.body.size() << "\r\n\r\n";
    std::string hs = h.str();
    if (!send_all(fd, hs.data(), hs.size())) return false;
    if (r.head) return true;
    if (r.drop_after >= 0 && r.drop_after < static_cast<int64_t>(r.body.size())) {
      send_all(fd, r.body.data(), static_cast<std::size_t>(r.drop_after));
      ::shutdown(fd, SHUT_RDWR);
      return false;
    }
    return send_all(fd, r.body.data(), r.body.size());
  }

  static Response error(int status, const std::string& code, const std::string& message) {
    Response r;
    r.status = status;
    if (!code.empty()) r.headers.push_back({"X-Error-Code", code});
    r.body = nlohmann::json{{"error", message}}.dump();
    r.headers.push_back({"Content-Type", "application/json"});
    return r;
  }

  // Serves `content` with Range support and the injected faults for `path`.
  Response content_response(const std::string& path, std::string content,
                            const LoggedRequest& req) {
    Response r;
    r.head = req.method == "HEAD";
    for (const auto& p : corrupt_) {
      if (path.rfind(p, 0) == 0 && !content.empty()) content.back() ^= 0x5a;
    }
    int64_t total = static_cast<int64_t>(content.size());
    bool ranges = std::none_of(ignore_range_.begin(), ignore_range_.end(),
                               [&](const std::string& p) { return path.rfind(p, 0) == 0; });
    if (ranges && req.range.rfind("bytes=", 0) == 0) {
      int64_t start = std::stoll(req.range.substr(6));
      if (start >= total) {
        Response e;
        e.status = 416;
        e.headers.push_back({"Content-Range", "bytes */" + std::to_string(total)});
        return e;
      }
      r.status = 206;
      r.headers.push_back({"Content-Range", "bytes " + std::to_string(start) + "-" +
                                                std::to_string(total - 1) + "/" +
                                                std::to_string(total)});
      content = content.substr(static_cast<std::size_t>(start));
    }
    if (ranges) r.headers.push_back({"Accept-Ranges", "bytes"});
    r.body = std::move(content);
    if (!r.head) {
      for (auto& d : drops_) {
        if (d.times > 0 && path.rfind(d.prefix, 0) == 0) {
          --d.times;
          r.drop_after = d.after;
          break;
        }
      }
    }
    return r;
  }

  Response route(const LoggedRequest& req) {
    const std::string& t = req.target;
    if (auto it = raw_.find(t); it != raw_.end()) return content_response(t, it->second, req);
    if (t.rfind("/cdn/", 0) == 0) {
      auto it = blobs_.find(t.substr(5));
      if (it == blobs_.end()) return error(404, "", "no such blob");
      return content_response(t, it->second, req);
    }
    std::string repo_id, rev, file;
    bool api = t.rfind("/api/models/", 0) == 0;
    if (api) {
      auto pos = t.find("/revision/");
      if (pos == std::string::npos) return error(404, "", "bad api path");
      repo_id = t.substr(12, pos - 12);
      rev = url_decode(t.substr(pos + 10));
    } else {
      auto pos = t.find("/resolve/");
      if (pos == std::string::npos) return error(404, "", "unknown path");
      repo_id = t.substr(1, pos - 1);
      std::string rest = t.substr(pos + 9);
      auto slash = rest.find('/');
      rev = url_decode(rest.substr(0, slash));
      file = slash == std::string::npos ? "" : url_decode(rest.substr(slash + 1));
    }
    if (auto ren = renamed_.find(repo_id); ren != renamed_.end()) {
      Response r;
      r.status = 307;
      r.head = req.method == "HEAD";
      std::string target = t;
      target.replace(target.find(repo_id), repo_id.size(), ren->second);
      r.headers.push_back({"Location", target});  // relative, as the hub sends it
      return r;
    }
    auto rit = repos_.find(repo_id);
    if (rit == repos_.end()) return error(404, "RepoNotFound", "Repository not found");
    const Repo& repo = rit->second;
    if (!repo.token.empty() && req.authorization != "Bearer " + repo.token) {
      return error(401, "", "Invalid credentials in Authorization header");
    }
    auto ref = repo.refs.find(rev);
    if (ref == repo.refs.end()) return error(404, "RevisionNotFound", "Invalid rev id: " + rev);
    if (api) {
      nlohmann::json j{
          {"id", repo_id}, {"sha", repo.commit}, {"siblings", nlohmann::json::array()}};
      for (const auto& [name, c] : repo.files) j["siblings"].push_back({{"rfilename", name}});
      Response r;
      r.body = j.dump();
      r.headers.push_back({"Content-Type", "application/json"});
      return r;
    }
    auto fit = repo.files.find(file);
    if (fit == repo.files.end()) {
      Response r = error(404, "EntryNotFound", "Entry not found");
      r.headers.push_back({"X-Repo-Commit", repo.commit});
      return r;
    }
    const std::string& content = fit->second;
    if (is_lfs(file)) {
      std::string sha = xlt::io::sha256_hex(content);
      int64_t size = static_cast<int64_t>(content.size());
      if (auto lie = size_lies_.find(file); lie != size_lies_.end()) size = lie->second;
      Response r;
      r.status = 302;
      r.head = req.method == "HEAD";
      // The "CDN" is another host name for the same server, as the real CDN is another host.
      r.headers = {{"Location", "http://localhost:" + std::to_string(port_) + "/cdn/" + sha},
                   {"X-Repo-Commit", repo.commit},
                   {"X-Linked-Etag", "\"" + sha + "\""},
                   {"X-Linked-Size", std::to_string(size)},
                   {"ETag", "\"" + git_etag(content) + "\""}};
      return r;
    }
    Response r = content_response(t, content, req);
    r.headers.push_back({"X-Repo-Commit", repo.commit});
    r.headers.push_back({"ETag", "W/\"" + git_etag(content) + "\""});
    return r;
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
  std::map<std::string, Repo> repos_;
  std::map<std::string, std::string> blobs_, raw_, renamed_;
  std::map<std::string, int64_t> size_lies_;
  std::vector<Drop> drops_;
  std::vector<std::string> corrupt_, ignore_range_;
  std::string held_;
  bool released_ = true;
  std::condition_variable held_cv_;
  std::vector<LoggedRequest> log_;
};

}  // namespace xlt::test
