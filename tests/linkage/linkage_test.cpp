// How xlt's binaries bind to their shared libraries. PyTorch 2.x wheels build libtorch.so with a
// static copy of std::filesystem from a newer libstdc++ and export it; a binary whose DT_NEEDED
// list names libtorch before libstdc++ binds its own std::filesystem calls to that copy, which
// calls weak symbols Debian 12's libstdc++ lacks (address 0: SIGSEGV in remove_all). The
// top-level CMakeLists puts libstdc++ first on every link line; these tests hold it there.
#include <ATen/ATen.h>
#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/test_env.h"

namespace fs = std::filesystem;

namespace xlt {
namespace {

// This binary links libtorch: a tensor op keeps the dependency from being dropped by the linker.
TEST(Linkage, ThisBinaryUsesLibtorch) {
  EXPECT_EQ(at::ones({2}).sum().item<float>(), 2.0F);
}

// The calls that crashed on libtorch 2.11 (run_command's remove_all(path, error_code&)) and their
// neighbours, each with its std::error_code overload.
TEST(Linkage, StdFilesystemWithErrorCodeWorks) {
  test::TempDir tmp;
  std::error_code ec;
  const fs::path tree = tmp / "a";
  ASSERT_TRUE(fs::create_directories(tree / "b" / "c", ec)) << ec.message();
  test::write_text(tree / "b" / "c" / "f.txt", "12345");
  test::write_text(tree / "g.txt", "xy");
  fs::create_symlink(tree / "g.txt", tree / "link", ec);
  ASSERT_FALSE(ec) << ec.message();

  EXPECT_EQ(fs::file_size(tree / "b" / "c" / "f.txt", ec), 5U);
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(tree / "link", ec)));
  EXPECT_EQ(fs::read_symlink(tree / "link", ec), tree / "g.txt");
  EXPECT_TRUE(fs::equivalent(tree / "link", tree / "g.txt", ec));
  EXPECT_EQ(fs::canonical(tree / "b" / ".." / "g.txt", ec), fs::canonical(tree / "g.txt"));
  EXPECT_EQ(fs::weakly_canonical(tree / "missing" / ".." / "g.txt", ec).filename(), "g.txt");
  fs::copy(tree / "b", tmp / "copy", fs::copy_options::recursive, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(test::read_text(tmp / "copy" / "c" / "f.txt"), "12345");
  fs::rename(tmp / "copy", tmp / "moved", ec);
  ASSERT_FALSE(ec) << ec.message();
  fs::permissions(tree / "g.txt", fs::perms::owner_read, fs::perm_options::replace, ec);
  EXPECT_FALSE(ec) << ec.message();
  fs::resize_file(tree / "b" / "c" / "f.txt", 2, ec);
  EXPECT_EQ(fs::file_size(tree / "b" / "c" / "f.txt"), 2U);

  size_t entries = 0;
  for (fs::recursive_directory_iterator it(tree, ec), end; !ec && it != end; it.increment(ec)) {
    ++entries;
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(entries, 5U);  // b, b/c, b/c/f.txt, g.txt, link
  EXPECT_GT(fs::space(tmp.path(), ec).capacity, 0U);
  EXPECT_FALSE(fs::temp_directory_path(ec).empty());

  EXPECT_EQ(fs::remove_all(tree, ec), 6U) << ec.message();  // the five and a itself
  EXPECT_FALSE(ec);
  EXPECT_EQ(fs::remove_all(tmp / "moved", ec), 3U);
  EXPECT_EQ(fs::remove_all(tmp / "never-existed", ec), 0U);
  EXPECT_FALSE(ec);
  EXPECT_FALSE(fs::exists(tree, ec));
}

// DT_NEEDED entries of an ELF64 file, in order; empty when `path` is not a dynamic ELF64 file.
std::vector<std::string> needed_libraries(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < sizeof(Elf64_Ehdr) || std::memcmp(b.data(), ELFMAG, SELFMAG) != 0 ||
      b[EI_CLASS] != ELFCLASS64) {
    return {};
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, b.data(), sizeof eh);
  auto section = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, b.data() + eh.e_shoff + i * eh.e_shentsize, sizeof sh);
    return sh;
  };
  std::vector<std::string> out;
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    const Elf64_Shdr dyn = section(i);
    if (dyn.sh_type != SHT_DYNAMIC) continue;
    const Elf64_Shdr strtab = section(dyn.sh_link);
    for (size_t off = 0; off + sizeof(Elf64_Dyn) <= dyn.sh_size; off += sizeof(Elf64_Dyn)) {
      Elf64_Dyn d;
      std::memcpy(&d, b.data() + dyn.sh_offset + off, sizeof d);
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag == DT_NEEDED) out.emplace_back(b.data() + strtab.sh_offset + d.d_un.d_val);
    }
  }
  return out;
}

bool is_libtorch(const std::string& lib) {
  return lib.rfind("libtorch", 0) == 0 || lib.rfind("libc10", 0) == 0;
}

// Every executable and shared module of the build that needs libtorch needs libstdc++ first.
TEST(Linkage, EveryBinaryNamesLibstdcxxBeforeLibtorch) {
  const fs::path build = test::cli_path().parent_path();
  ASSERT_TRUE(fs::exists(build / "CMakeCache.txt")) << build;
  size_t checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(build)) {
    if (!e.is_regular_file() || e.path().string().find("CMakeFiles") != std::string::npos) {
      continue;
    }
    const bool exec = (e.status().permissions() & fs::perms::owner_exec) != fs::perms::none;
    if (!exec && e.path().extension() != ".so") continue;
    const auto needed = needed_libraries(e.path());
    const auto torch = std::find_if(needed.begin(), needed.end(), is_libtorch);
    if (torch == needed.end()) continue;
    const auto stdcxx = std::find(needed.begin(), needed.end(), "libstdc++.so.6");
    EXPECT_TRUE(stdcxx < torch) << e.path() << " names " << *torch << " before libstdc++.so.6";
    ++checked;
  }
  // The CLI, this suite and the other torch test suites at least.
  EXPECT_GE(checked, 3U);
}

}  // namespace
}  // namespace xlt
