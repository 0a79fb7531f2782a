// SentencePiece loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) (see spm_runtime.h for why).
//
// Member functions are called through dlsym'd pointers with the Itanium C++ ABI: `this` is the
// first argument, and class results that are not trivially copyable (util::Status,
// ImmutableSentencePieceText) are constructed in caller storage. The header is included only for
// the classes' sizes and the inline Status::ok(); nothing here makes the linker pull in a
// sentencepiece symbol, so the library never enters the global scope.
#include "text/spm_runtime.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <mutex>
#include <new>

#include "xlt/core/error.h"

namespace xlt::text::spm {
namespace {

using SpProcessor = sentencepiece::SentencePieceProcessor;
using SpStatus = sentencepiece::util::Status;
using SpText = sentencepiece::ImmutableSentencePieceText;

struct Api {
  void (*ctor)(void* self) = nullptr;
  void (*dtor)(void* self) = nullptr;
  SpStatus (*load)(void* self, std::string_view path) = nullptr;
  SpText (*encode)(const void* self, std::string_view text) = nullptr;
  int (*piece_size)(const void* self) = nullptr;
  int (*piece_to_id)(const void* self, std::string_view piece) = nullptr;
  const std::string& (*id_to_piece)(const void* self, int id) = nullptr;
  void (*status_dtor)(void* self) = nullptr;
  const char* (*status_message)(const void* self) = nullptr;
  void (*text_dtor)(void* self) = nullptr;
  std::size_t (*text_size)(const void* self) = nullptr;
  // ImmutableSentencePieceText::pieces(int) returns a one-pointer, trivially copyable object.
  const void* (*text_piece)(const void* self, int index) = nullptr;
  const std::string& (*piece_str)(const void* self) = nullptr;
  std::uint32_t (*piece_id)(const void* self) = nullptr;
  std::uint32_t (*piece_begin)(const void* self) = nullptr;
  std::uint32_t (*piece_end)(const void* self) = nullptr;
  std::string error;  // non-empty when the library could not be used
};

template <class F>
void bind(void* handle, F& fn, const char* symbol, std::string& error) {
  void* p = dlsym(handle, symbol);
  if (!p && error.empty()) error = std::string("symbol ") + symbol + " not found";
  fn = reinterpret_cast<F>(p);
}

Api load_api() {
  // ASan refuses RTLD_DEEPBIND libraries (google/sanitizers#611). Sanitizer and fuzz builds
  // are torch-free, so there is no second protobuf for DEEPBIND to keep apart.
#if defined(__SANITIZE_ADDRESS__)
  constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL;
#else
  constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
#else
  constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif
  Api api;
  std::vector<std::string> names;
  if (const char* env = std::getenv("XLT_SENTENCEPIECE_LIBRARY"); env && *env) names.push_back(env);
  names.push_back("libsentencepiece.so.0");
  names.push_back("libsentencepiece.so");
  void* handle = nullptr;
  std::string tried;
  for (const std::string& n : names) {
    handle = dlopen(n.c_str(), kDlopenFlags);
    if (handle) break;
    const char* why = dlerror();
    tried += "\n  " + n + ": " + (why ? why : "not found");
  }
  if (!handle) {
    api.error =
        "cannot load the SentencePiece library (install libsentencepiece0 or set "
        "XLT_SENTENCEPIECE_LIBRARY):" +
        tried;
    return api;
  }
  std::string& e = api.error;
  bind(handle, api.ctor, "_ZN13sentencepiece22SentencePieceProcessorC1Ev", e);
  bind(handle, api.dtor, "_ZN13sentencepiece22SentencePieceProcessorD1Ev", e);
  bind(handle, api.load,
       "_ZN13sentencepiece22SentencePieceProcessor4LoadESt17basic_string_viewIcSt11char_traitsIcEE",
       e);
  bind(handle, api.encode,
       "_ZNK13sentencepiece22SentencePieceProcessor22EncodeAsImmutableProtoESt17basic_string_"
       "viewIcSt11char_traitsIcEE",
       e);
  bind(handle, api.piece_size, "_ZNK13sentencepiece22SentencePieceProcessor12GetPieceSizeEv", e);
  bind(handle, api.piece_to_id,
       "_ZNK13sentencepiece22SentencePieceProcessor9PieceToIdESt17basic_string_viewIcSt11char_"
       "traitsIcEE",
       e);
  bind(handle, api.id_to_piece, "_ZNK13sentencepiece22SentencePieceProcessor9IdToPieceB5cxx11Ei",
       e);
  bind(handle, api.status_dtor, "_ZN13sentencepiece4util6StatusD1Ev", e);
  bind(handle, api.status_message, "_ZNK13sentencepiece4util6Status13error_messageEv", e);
  bind(handle, api.text_dtor, "_ZN13sentencepiece26ImmutableSentencePieceTextD1Ev", e);
  bind(handle, api.text_size, "_ZNK13sentencepiece26ImmutableSentencePieceText11pieces_sizeEv", e);
  bind(handle, api.text_piece, "_ZNK13sentencepiece26ImmutableSentencePieceText6piecesEi", e);
  bind(handle, api.piece_str,
       "_ZNK13sentencepiece49ImmutableSentencePieceText_ImmutableSentencePiece5pieceB5cxx11Ev", e);
  bind(handle, api.piece_id,
       "_ZNK13sentencepiece49ImmutableSentencePieceText_ImmutableSentencePiece2idEv", e);
  bind(handle, api.piece_begin,
       "_ZNK13sentencepiece49ImmutableSentencePieceText_ImmutableSentencePiece5beginEv", e);
  bind(handle, api.piece_end,
       "_ZNK13sentencepiece49ImmutableSentencePieceText_ImmutableSentencePiece3endEv", e);
  if (!e.empty()) e = "the SentencePiece library is not the version xlt expects (0.1.9x): " + e;
  return api;
}

const Api& api() {
  static const Api instance = load_api();
  if (!instance.error.empty()) throw TokenizerError(instance.error);
  return instance;
}

// Storage for a class result the library constructs; destroyed with the library's destructor.
template <class T>
struct Result {
  alignas(T) unsigned char bytes[sizeof(T)];
  T* get() { return std::launder(reinterpret_cast<T*>(bytes)); }
};

}  // namespace

std::unique_ptr<Processor> Processor::load(const std::filesystem::path& model_file) {
  const Api& a = api();
  std::unique_ptr<Processor> p(new Processor());
  void* mem = ::operator new(sizeof(SpProcessor));
  a.ctor(mem);
  p->impl_ = mem;
  Result<SpStatus> status;
  const std::string path = model_file.string();
  try {
    ::new (status.bytes) SpStatus(a.load(mem, path));
  } catch (const std::exception& e) {
    // libsentencepiece validates with exceptions in places (darts_clone's "zero-length key",
    // found by fuzz/sentencepiece_fuzz): still a bad model file, not an internal error.
    throw TokenizerError(path + ": not a valid SentencePiece model (" + e.what() + ")");
  }
  const bool ok = status.get()->ok();
  std::string message = ok ? "" : a.status_message(status.get());
  a.status_dtor(status.get());
  if (!ok) {
    throw TokenizerError(path + ": not a valid SentencePiece model (" + message + ")");
  }
  return p;
}

Processor::~Processor() {
  if (!impl_) return;
  api().dtor(impl_);
  ::operator delete(impl_);
}

void Processor::encode(std::string_view text, std::vector<Piece>& out) const {
  const Api& a = api();
  Result<SpText> spt;
  ::new (spt.bytes) SpText(a.encode(impl_, text));
  struct Guard {
    const Api& a;
    SpText* t;
    ~Guard() { a.text_dtor(t); }
  } guard{a, spt.get()};
  const std::size_t n = a.text_size(spt.get());
  for (std::size_t i = 0; i < n; ++i) {
    const void* piece = a.text_piece(spt.get(), static_cast<int>(i));
    out.push_back({a.piece_str(&piece), static_cast<int>(a.piece_id(&piece)), a.piece_begin(&piece),
                   a.piece_end(&piece)});
  }
}

int Processor::piece_size() const {
  return api().piece_size(impl_);
}

int Processor::piece_to_id(std::string_view piece) const {
  return api().piece_to_id(impl_, piece);
}

std::string Processor::id_to_piece(int id) const {
  return api().id_to_piece(impl_, id);
}

}  // namespace xlt::text::spm
