// libsentencepiece, loaded in isolation at run time.
//
// Debian's libsentencepiece.so.0 carries its own copy of protobuf-lite and exports all of its
// symbols; libtorch links the system libprotobuf.so.32. With both in the global symbol scope,
// libprotobuf's static initialisers bind to sentencepiece's protobuf functions and the process
// crashes before main(). So xlt never links sentencepiece's symbols: it dlopen()s the library
// with RTLD_LOCAL | RTLD_DEEPBIND (sentencepiece keeps using its own protobuf, nothing else sees
// it) and calls the few entry points it needs through dlsym. XLT_SENTENCEPIECE_LIBRARY names
// another library file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace xlt::text::spm {

struct Piece {
  std::string piece;        // the piece as SentencePiece writes it ("▁the"), or the surface text
  int id = 0;               // SentencePiece id (0 = unknown in the models xlt reads)
  std::uint32_t begin = 0;  // byte offsets of the piece's surface in the input
  std::uint32_t end = 0;
};

class Processor {
 public:
  // Loads a SentencePiece model; throws TokenizerError naming the file (or the library when it
  // cannot be loaded).
  static std::unique_ptr<Processor> load(const std::filesystem::path& model_file);
  ~Processor();
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  // Thread-safe, as SentencePieceProcessor::Encode is.
  void encode(std::string_view text, std::vector<Piece>& out) const;
  int piece_size() const;
  int piece_to_id(std::string_view piece) const;
  std::string id_to_piece(int id) const;

 private:
  Processor() = default;
  void* impl_ = nullptr;  // a sentencepiece::SentencePieceProcessor
};

}  // namespace xlt::text::spm
