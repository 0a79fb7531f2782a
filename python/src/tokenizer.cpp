// xlt.Tokenizer and xlt.Encoding: the C++ tokenizers (HF-exact WordPiece and SentencePiece) with
// HF's field names. encode_batch runs on C++ threads without the GIL. Offsets are converted from
// the library's byte offsets to str indices, so text[begin:end] slices back as in Hugging Face.
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "xlt/core/error.h"
#include "xlt/io/hub_cache.h"
#include "xlt/text/tokenizer.h"

namespace xlt::python {
namespace {

using Texts = std::shared_ptr<const std::vector<std::string>>;

// Code-point index of every byte position of `s` (size + 1 entries).
std::vector<int64_t> char_index(const std::string& s) {
  std::vector<int64_t> idx(s.size() + 1);
  int64_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    idx[i] = chars;
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++chars;
  }
  idx[s.size()] = chars;
  // A position inside a character (never produced for valid input) maps to that character.
  return idx;
}

// One encoding with the texts it came from (shared by a whole batch).
struct PyEncoding {
  text::Encoding enc;
  Texts texts, pairs;  // pairs is null for single texts
  size_t index = 0;

  py::list offsets() const {
    std::vector<int64_t> first = char_index((*texts)[index]);
    std::vector<int64_t> second;
    if (pairs) second = char_index((*pairs)[index]);
    py::list out;
    for (size_t i = 0; i < enc.size(); ++i) {
      const auto& o = enc.offsets[i];
      const int s = enc.sequence_ids[i];
      const std::vector<int64_t>* map = s == 0 ? &first : s == 1 ? &second : nullptr;
      if (!map || o.end >= map->size()) {
        out.append(py::make_tuple(0, 0));
      } else {
        out.append(py::make_tuple((*map)[o.begin], (*map)[o.end]));
      }
    }
    return out;
  }

  py::dict to_dict() const {
    py::dict d;
    d["input_ids"] = py::cast(enc.ids);
    d["token_type_ids"] = py::cast(enc.token_type_ids);
    d["attention_mask"] = py::cast(enc.attention_mask);
    d["special_tokens_mask"] = py::cast(enc.special_tokens_mask);
    d["tokens"] = py::cast(enc.tokens);
    d["offsets"] = offsets();
    d["sequence_ids"] = py::cast(enc.sequence_ids);
    return d;
  }
};

text::EncodeOptions encode_options(std::optional<int64_t> max_length, bool add_special_tokens) {
  text::EncodeOptions o;
  o.add_special_tokens = add_special_tokens;
  if (max_length) {
    if (*max_length < 1) {
      throw UsageError("max_length must be >= 1, got " + std::to_string(*max_length));
    }
    o.max_length = static_cast<std::size_t>(*max_length);
    o.truncation = text::TruncationStrategy::kLongestFirst;  // as `xlt tokenize --max-length`
  }
  return o;
}

std::vector<std::string> as_strings(const py::handle& obj, const char* what) {
  if (py::isinstance<py::str>(obj)) {
    throw UsageError(std::string(what) + ": expected a list of strings, got one string");
  }
  try {
    return obj.cast<std::vector<std::string>>();
  } catch (const py::cast_error&) {
    throw UsageError(std::string(what) + ": expected a list of strings");
  }
}

py::dict padded_arrays(const std::vector<text::Encoding>& batch) {
  const auto rows = static_cast<py::ssize_t>(batch.size());
  const auto cols = static_cast<py::ssize_t>(batch.empty() ? 0 : batch[0].size());
  py::array_t<int64_t> ids({rows, cols}), types({rows, cols}), mask({rows, cols});
  auto i = ids.mutable_unchecked<2>();
  auto t = types.mutable_unchecked<2>();
  auto a = mask.mutable_unchecked<2>();
  for (py::ssize_t r = 0; r < rows; ++r) {
    const auto& e = batch[static_cast<size_t>(r)];
    for (py::ssize_t c = 0; c < cols; ++c) {
      i(r, c) = e.ids[static_cast<size_t>(c)];
      t(r, c) = e.token_type_ids[static_cast<size_t>(c)];
      a(r, c) = e.attention_mask[static_cast<size_t>(c)];
    }
  }
  py::dict d;
  d["input_ids"] = ids;
  d["token_type_ids"] = types;
  d["attention_mask"] = mask;
  return d;
}

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<PyEncoding>(m, "Encoding",
                         "One encoded text or pair (HF field names); offsets are str indices")
      .def_property_readonly("input_ids", [](const PyEncoding& e) { return e.enc.ids; })
      .def_property_readonly("ids", [](const PyEncoding& e) { return e.enc.ids; })
      .def_property_readonly("token_type_ids",
                             [](const PyEncoding& e) { return e.enc.token_type_ids; })
      .def_property_readonly("attention_mask",
                             [](const PyEncoding& e) { return e.enc.attention_mask; })
      .def_property_readonly("special_tokens_mask",
                             [](const PyEncoding& e) { return e.enc.special_tokens_mask; })
      .def_property_readonly("tokens", [](const PyEncoding& e) { return e.enc.tokens; })
      .def_property_readonly("sequence_ids", [](const PyEncoding& e) { return e.enc.sequence_ids; })
      .def_property_readonly("offsets", &PyEncoding::offsets)
      .def_property_readonly("num_truncated",
                             [](const PyEncoding& e) { return e.enc.num_truncated; })
      .def("to_dict", &PyEncoding::to_dict)
      .def("keys", [](const PyEncoding& e) { return e.to_dict().attr("keys")(); })
      .def("__getitem__",
           [](const PyEncoding& e, const std::string& k) {
             // A py::object, not the accessor: that would point into the temporary dict.
             const py::dict d = e.to_dict();
             if (!d.contains(k)) throw py::key_error(k);
             return py::object(d[k.c_str()]);
           })
      .def("__contains__",
           [](const PyEncoding& e, const py::object& k) { return e.to_dict().contains(k); })
      .def("__iter__", [](const PyEncoding& e) { return py::iter(e.to_dict()); })
      .def("__len__", [](const PyEncoding& e) { return e.enc.size(); })
      .def("__repr__", [](const PyEncoding& e) {
        return "Encoding(num_tokens=" + std::to_string(e.enc.size()) + ")";
      });

  py::class_<text::Tokenizer, std::shared_ptr<text::Tokenizer>>(
      m, "Tokenizer",
      "A model's tokenizer, token for token as Hugging Face's (thread-safe, immutable)")
      .def_static(
          "from_pretrained",
          [](const py::object& path_or_id, bool slow) {
            const std::string path = fspath(path_or_id);
            py::gil_scoped_release nogil;
            text::LoadOptions lo;
            lo.prefer_slow = slow;
            const io::ModelLocation where = io::resolve_model_location(path);
            return std::shared_ptr<text::Tokenizer>(text::load_tokenizer(where.path, lo));
          },
          py::arg("path_or_hub_id"), py::arg("slow") = false,
          "Loads from a model folder, tokenizer folder/file or a cached hub id; slow=True uses "
          "vocab.txt / sentencepiece.bpe.model even when tokenizer.json is present.")
      .def(
          "encode",
          [](const text::Tokenizer& tok, const std::string& text, std::optional<std::string> pair,
             std::optional<int64_t> max_length, bool add_special_tokens) {
            const auto o = encode_options(max_length, add_special_tokens);
            PyEncoding e;
            {
              py::gil_scoped_release nogil;
              e.enc = pair ? tok.encode_pair(text, *pair, o) : tok.encode(text, o);
            }
            e.texts = std::make_shared<const std::vector<std::string>>(1, text);
            if (pair) e.pairs = std::make_shared<const std::vector<std::string>>(1, *pair);
            return e.to_dict();
          },
          py::arg("text"), py::arg("pair") = py::none(), py::arg("max_length") = py::none(),
          py::arg("add_special_tokens") = true,
          "tokenizer(text[, pair]): dict of input_ids, token_type_ids, attention_mask, "
          "special_tokens_mask, tokens, offsets (str indices), sequence_ids. max_length "
          "truncates longest_first.")
      .def(
          "encode_batch",
          [](const text::Tokenizer& tok, const py::object& texts, const py::object& pairs,
             std::optional<int64_t> max_length, bool add_special_tokens, int num_threads,
             std::optional<std::string> return_tensors) -> py::object {
            auto o = encode_options(max_length, add_special_tokens);
            if (return_tensors) {
              if (*return_tensors != "np") {
                throw UsageError("return_tensors: expected 'np' or None, got '" + *return_tensors +
                                 "'");
              }
              o.padding = text::PaddingStrategy::kLongest;
            }
            auto first =
                std::make_shared<const std::vector<std::string>>(as_strings(texts, "texts"));
            Texts second;
            if (!pairs.is_none()) {
              second = std::make_shared<const std::vector<std::string>>(as_strings(pairs, "pairs"));
              if (second->size() != first->size()) {
                throw UsageError("pairs: " + std::to_string(second->size()) + " texts for " +
                                 std::to_string(first->size()) + " texts");
              }
            }
            // In chunks, so that Ctrl-C (which Python only notes while C++ runs without the
            // GIL) stops a long call within a chunk's time rather than at its end.
            constexpr size_t kChunk = 16384;
            const size_t n = first->size();
            text::EncodeOptions unpadded = o;  // padding is to the whole batch's longest
            unpadded.padding = text::PaddingStrategy::kNone;
            std::vector<text::Encoding> batch;
            batch.reserve(n);
            for (size_t start = 0; start < n; start += kChunk) {
              const size_t end = std::min(n, start + kChunk);
              {
                py::gil_scoped_release nogil;
                std::vector<text::Encoding> part;
                if (second) {
                  std::vector<std::pair<std::string, std::string>> p(end - start);
                  for (size_t i = start; i < end; ++i) p[i - start] = {(*first)[i], (*second)[i]};
                  part = tok.encode_pair_batch(p, unpadded, num_threads);
                } else {
                  part = tok.encode_batch(
                      std::vector<std::string>(first->begin() + static_cast<std::ptrdiff_t>(start),
                                               first->begin() + static_cast<std::ptrdiff_t>(end)),
                      unpadded, num_threads);
                }
                std::move(part.begin(), part.end(), std::back_inserter(batch));
              }
              if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            }
            tok.pad(batch, o);
            if (return_tensors) return padded_arrays(batch);
            py::list out(batch.size());
            for (size_t i = 0; i < batch.size(); ++i) {
              out[i] = py::cast(PyEncoding{std::move(batch[i]), first, second, i});
            }
            return out;
          },
          py::arg("texts"), py::arg("pairs") = py::none(), py::arg("max_length") = py::none(),
          py::arg("add_special_tokens") = true, py::arg("num_threads") = 0,
          py::arg("return_tensors") = py::none(),
          "Encodes many texts (or text/pair pairs) on num_threads C++ threads (0 = all cores) "
          "without the GIL. Returns a list of Encoding, or with return_tensors='np' a dict of "
          "int64 arrays [batch, longest] padded as the tokenizer pads.")
      .def(
          "__call__",
          [](const py::object& self, const py::object& text, const py::object& pair,
             const py::object& max_length, bool add_special_tokens,
             const py::object& return_tensors) -> py::object {
            // transformers' tokenizer(text) / tokenizer([texts]): one text is encode, a list
            // encode_batch (padded arrays with return_tensors="np").
            if (py::isinstance<py::str>(text)) {
              if (!return_tensors.is_none()) {
                throw UsageError("return_tensors: give a list of texts (a batch) for arrays");
              }
              return self.attr("encode")(text, pair, max_length, add_special_tokens);
            }
            return self.attr("encode_batch")(text, pair, max_length, add_special_tokens, 0,
                                             return_tensors);
          },
          py::arg("text"), py::arg("pair") = py::none(), py::arg("max_length") = py::none(),
          py::arg("add_special_tokens") = true, py::arg("return_tensors") = py::none(),
          "tokenizer(text[, pair]) as encode; tokenizer([texts][, pairs]) as encode_batch.")
      .def(
          "tokenize",
          [](const text::Tokenizer& tok, const std::string& text) {
            py::gil_scoped_release nogil;
            return tok.tokenize(text);
          },
          py::arg("text"), "HF tokenize(text): tokens without the template's special tokens.")
      .def(
          "decode",
          [](const text::Tokenizer& tok, const std::vector<text::TokenId>& ids,
             bool skip_special_tokens) {
            text::DecodeOptions o;
            o.skip_special_tokens = skip_special_tokens;
            py::gil_scoped_release nogil;
            return tok.decode(ids, o);
          },
          py::arg("ids"), py::arg("skip_special_tokens") = false, "HF decode(ids).")
      .def("token_to_id", &text::Tokenizer::token_to_id, py::arg("token"))
      .def("id_to_token", &text::Tokenizer::id_to_token, py::arg("id"))
      .def_property_readonly("vocab_size", &text::Tokenizer::vocab_size)
      .def("__len__", &text::Tokenizer::vocab_size)
      .def_property_readonly("family",
                             [](const text::Tokenizer& t) { return family_name(t.info().family); })
      .def_property_readonly("backend",
                             [](const text::Tokenizer& t) {
                               return t.info().backend == text::Backend::kFast ? "fast" : "slow";
                             })
      .def_property_readonly("model_max_length",
                             [](const text::Tokenizer& t) { return t.info().model_max_length; })
      .def_property_readonly("padding_side",
                             [](const text::Tokenizer& t) {
                               return t.info().padding_side == text::PaddingSide::kLeft ? "left"
                                                                                        : "right";
                             })
      .def_property_readonly(
          "truncation_side",
          [](const text::Tokenizer& t) {
            return t.info().truncation_side == text::TruncationSide::kLeft ? "left" : "right";
          })
      .def_property_readonly("pad_token_id",
                             [](const text::Tokenizer& t) { return t.special_tokens().pad.id; })
      .def("__repr__", [](const text::Tokenizer& t) {
        return "Tokenizer(" + family_name(t.info().family) + ", " + t.info().tokenizer_class +
               ", vocab " + std::to_string(t.vocab_size()) + ")";
      });
}

}  // namespace xlt::python
