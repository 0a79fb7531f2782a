#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/corpus/<target>/ (run from anywhere; idempotent).
Seeds are valid or nearly valid inputs written for xlt, so the fuzzer starts from the formats'
interesting shapes instead of from nothing. Python standard library only."""
import json, os, struct, zipfile, io, shutil

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")
REPO = os.path.dirname(ROOT)
SEP = b"\n=====\n"


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    for name, (dtype, shape, data) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


# safetensors
f32 = lambda *v: struct.pack("<%df" % len(v), *v)
put("safetensors_fuzz", "two_f32", safetensors({"a.weight": ("F32", [2, 2], f32(1, 2, 3, 4)), "b": ("F32", [1], f32(5))}))
put("safetensors_fuzz", "mixed", safetensors({"h": ("F16", [2], b"\x00\x3c\x00\x40"), "i": ("I64", [1], struct.pack("<q", 7)),
                                              "m": ("BOOL", [3], b"\x01\x00\x01"), "z": ("BF16", [0], b"")}, {"format": "pt"}))
put("safetensors_fuzz", "empty", safetensors({}))
put("safetensors_fuzz", "scalar", safetensors({"s": ("F64", [], struct.pack("<d", 1.5))}))

# sharded index
put("safetensors_index_fuzz", "valid", json.dumps({"metadata": {"total_size": 24}, "weight_map": {
    "a.weight": "model-00001-of-00002.safetensors", "b.bias": "model-00002-of-00002.safetensors"}}))
put("safetensors_index_fuzz", "one_shard", json.dumps({"weight_map": {"a.weight": "model-00001-of-00002.safetensors"}}))
put("safetensors_index_fuzz", "escape", json.dumps({"weight_map": {"a.weight": "../x.safetensors"}}))

# torch pickle: hand-built protocol-2 state dicts, and the project's torch.save test files
def binunicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def tensor_pickle(key, numel, shape, stride, offset=0, storage="FloatStorage"):
    s = b"ctorch._utils\n_rebuild_tensor_v2\n((" + binunicode("storage") + b"ctorch\n" + storage.encode() + b"\n"
    s += binunicode(key) + binunicode("cpu") + b"K" + bytes([numel]) + b"tQK" + bytes([offset])
    s += b"(" + b"".join(b"K" + bytes([d]) for d in shape) + b"t"
    s += b"(" + b"".join(b"K" + bytes([d]) for d in stride) + b"t"
    return s + b"\x89ccollections\nOrderedDict\n)RtR"


pkl = (b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(" + binunicode("w") + tensor_pickle("0", 6, [2, 3], [3, 1])
       + binunicode("b") + tensor_pickle("1", 3, [3], [1], 0, "LongStorage")
       + binunicode("t") + tensor_pickle("0", 6, [3, 2], [1, 3]) + b"u.")
put("torch_pickle_fuzz", "state_dict.pkl", pkl)
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", pkl)
    z.writestr("archive/data/0", f32(1, 2, 3, 4, 5, 6))
    z.writestr("archive/data/1", struct.pack("<3q", 1, 2, 3))
    z.writestr("archive/version", "3\n")
    z.writestr("archive/byteorder", "little")
put("torch_pickle_fuzz", "state_dict_zip.bin", zbuf.getvalue())
tb = os.path.join(REPO, "tests", "io", "data", "torch_bin")
for name in ["legacy.bin", "protocol4.bin", "evil_os_system.bin", "evil_inst.bin", "evil_reduce_storage.bin"]:
    p = os.path.join(tb, name)
    if os.path.exists(p):
        put("torch_pickle_fuzz", name, open(p, "rb").read())

# config.json
bert = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 100, "hidden_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64,
        "id2label": {"0": "entailment", "1": "neutral", "2": "contradiction"},
        "label2id": {"entailment": 0, "neutral": 1, "contradiction": 2}, "hidden_act": "gelu", "classifier_dropout": None}
put("model_config_fuzz", "bert.json", json.dumps(bert, indent=2))
put("model_config_fuzz", "xlmr.json", json.dumps({"model_type": "xlm-roberta", "vocab_size": 250002, "pad_token_id": 1,
                                                 "bos_token_id": 0, "eos_token_id": 2, "type_vocab_size": 1,
                                                 "layer_norm_eps": 1e-5, "max_position_embeddings": 514}))
put("model_config_fuzz", "xglm.json", json.dumps({"model_type": "xglm", "vocab_size": 256008, "d_model": 64, "num_layers": 2,
                                                 "attention_heads": 4, "ffn_dim": 128, "activation_function": "gelu",
                                                 "scale_embedding": True, "max_position_embeddings": 2048}))
put("model_config_fuzz", "dup_key.json", '{"model_type": "bert", "vocab_size": 10, "vocab_size": 20}')

# vocab.txt
vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n,\n!\nun\n##aff\n##able\ncaf\n##\xc3\xa9\n"
put("vocab_txt_fuzz", "small.txt", vocab)
put("vocab_txt_fuzz", "crlf.txt", vocab.replace("\n", "\r\n"))
put("vocab_txt_fuzz", "no_unk.txt", "[PAD]\n[CLS]\n[SEP]\nhello\n")

# tokenizer.json (WordPiece pipeline as HF writes it for BERT)
vocab_map = {t: i for i, t in enumerate(vocab.strip("\n").split("\n"))}
tj = {"version": "1.0", "truncation": None, "padding": None,
      "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                        "normalized": False, "special": True} for t, i in vocab_map.items() if t.startswith("[")],
      "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                     "strip_accents": None, "lowercase": False},
      "pre_tokenizer": {"type": "BertPreTokenizer"},
      "post_processor": {"type": "TemplateProcessing",
                         "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                         "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                  {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                                  {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                         "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                            "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
      "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
      "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100, "vocab": vocab_map}}
put("tokenizer_json_fuzz", "wordpiece.json", json.dumps(tj))
tj2 = dict(tj, normalizer={"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]},
           pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Punctuation"}]})
put("tokenizer_json_fuzz", "sequence.json", json.dumps(tj2))
put("tokenizer_json_fuzz", "bpe.json", json.dumps({"model": {"type": "BPE", "vocab": {}, "merges": []}}))

# tokenizer_config.json + special_tokens_map.json
put("tokenizer_config_fuzz", "bert", json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": False,
                                                "model_max_length": 512, "padding_side": "left"}).encode() + SEP +
    json.dumps({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}).encode())
put("tokenizer_config_fuzz", "added_decoder", json.dumps({
    "tokenizer_class": "BertTokenizerFast", "do_lower_case": True, "tokenize_chinese_chars": True, "strip_accents": None,
    "added_tokens_decoder": {"0": {"content": "[PAD]", "lstrip": False, "normalized": False, "rstrip": False,
                                   "single_word": False, "special": True},
                             "15": {"content": "<new>", "lstrip": True, "normalized": True, "rstrip": False,
                                    "single_word": True, "special": False}},
    "additional_special_tokens": ["<new>"]}))
put("tokenizer_config_fuzz", "map_objects", b"{}" + SEP + json.dumps({
    "mask_token": {"content": "[MASK]", "lstrip": True, "rstrip": False, "normalized": False, "single_word": False},
    "additional_special_tokens": [{"content": "hello", "lstrip": False, "rstrip": False, "normalized": True, "single_word": False}]}).encode())

# SentencePiece models: the project's demo XGLM model (family byte 1) if present.
spm = os.path.join(REPO, "examples", "demo", "xglm", "sentencepiece.bpe.model")
if os.path.exists(spm):
    data = open(spm, "rb").read()
    put("sentencepiece_fuzz", "demo_xglm", b"\x01" + data)
    put("sentencepiece_fuzz", "demo_as_xlmr", b"\x00" + data)
    put("sentencepiece_fuzz", "truncated", b"\x00" + data[: len(data) // 3])

# NLI readers: first byte = format (0 auto, 1 xnli, 2 xtreme, 3 mnli, 4 hf-jsonl, 5 hf-csv; 0x80 skip bad rows)
put("nli_reader_fuzz", "xnli.tsv", b"\x01" + b"language\tgold_label\tsentence1\tsentence2\tpairID\nen\tentailment\tA man.\tA person.\t1\n"
    b"en\tneutral\tx\ty\t2\nes\tcontradiction\tUn hombre.\tNadie.\t1\n")
put("nli_reader_fuzz", "xtreme.tsv", b"\x02" + "A man.\tA person.\tentailment\nCaf\u00e9\tOui\tcontradictory\n".encode())
put("nli_reader_fuzz", "mnli.jsonl", b"\x83" + b'{"gold_label": "neutral", "sentence1": "a", "sentence2": "b", "pairID": "7"}\n'
    b'{"gold_label": "-", "sentence1": "c", "sentence2": "d"}\n{"broken\n')
put("nli_reader_fuzz", "hf.jsonl", b"\x04" + b'{"premise": "a", "hypothesis": "b", "label": 0}\n{"premise": "c", "hypothesis": "d", "label": -1}\n')
put("nli_reader_fuzz", "hf.csv", b"\x85" + b'premise,hypothesis,label\n"a, quoted ""x""",b,2\n"multi\nline",c,1\nbad"quote,d,0\n')
put("nli_reader_fuzz", "auto_bom.tsv", b"\x00\xef\xbb\xbfpremise\thypo\tlabel\r\na\tb\tentailment\r\n")

# study TOML (the fuzz target resolves paths against a folder with bert-config.json, tok/, dev-en.tsv, train.jsonl)
demo = os.path.join(REPO, "examples", "demo.toml")
if os.path.exists(demo):
    put("study_config_fuzz", "demo.toml", open(demo, "rb").read())
put("study_config_fuzz", "small.toml", """[study]
title = "fuzz seed"
languages = ["en", "es"]
seeds = [1, 2]
stages = ["finetune", "zero_shot"]
threads = 1

[encoder]
init = "bert-config.json"
tokenizer = "tok"

[causal_lm]
enabled = false

[train]
data = "train.jsonl"
epochs = 1
learning_rate = 1e-3
warmup_ratio = 0.1

[eval]
files = { en = "dev-en.tsv" }
samples = 0
""")
put("study_config_fuzz", "bad_type.toml", '[study]\nlanguages = "en"\n[train]\nepochs = -1\nunknown_key = 3\n')
put("study_config_fuzz", "hub.toml", '[encoder]\nmodel = "bert-base-multilingual-cased"\n[eval]\ndata = "xnli:split=test"\n')

# CLI dataset specs: line 1 --langs, line 2 format, then --data values
put("data_spec_fuzz", "pairs", "en\nauto\nen=en.tsv\n")
put("data_spec_fuzz", "xnli", "en,es\nxnli-tsv\nxnli.tsv\n")
put("data_spec_fuzz", "mixed", "en, es\nauto\nxnli.tsv\nfr=en.tsv\nen=train.jsonl\n")
put("data_spec_fuzz", "bad", ",en,,en\nnope\n=x\nen=\nruns/a=b.tsv\nmissing.tsv\n")
# Text for a fixed tokenizer: byte 0 picks it (0 demo vocab.txt, 1 demo XGLM, 2 mBERT
# tokenizer.json, 3 XLM-R unigram, modulo those present), then the text and an optional pair.
put("tokenizer_text_fuzz", "ascii_bert", b"\x00Hello, world! unaffable caf\xc3\xa9 [MASK]")
put("tokenizer_text_fuzz", "hindi_pair_xglm",
    b"\x01" + "हिन्दी text".encode() + SEP + b"second <s> text")
put("tokenizer_text_fuzz", "invalid_utf8_fast", b"\x02b\xffad utf8 \xf0\x9f\x98\x80  tabs\there")
put("tokenizer_text_fuzz", "cjk_xlmr", b"\x03  " + "中文 [MASK] <mask>\u0301".encode() + SEP)
put("tokenizer_text_fuzz", "controls", b"\x00\x00\x7f\r\n\u00a0" + "\u200b\ufeffx".encode())
print("seeds written under", CORPUS)
