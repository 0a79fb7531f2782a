#!/usr/bin/env python3
"""Gradient and AdamW references for the fixture folders whose ref.safetensors has none (XLM-R
and XGLM; the BERT fixture carries its own), computed with Hugging Face transformers the way the
BERT ones were (fixtures/README.md): eval mode, float32, CPU, one thread, loss.backward() on the
fixture's own inputs and labels, then one torch.optim.AdamW step (lr 2e-5, weight_decay 0.01,
one parameter group over model.parameters(), single-tensor implementation).

Writes tests/parity/gradient_refs/<fixture>.safetensors and <fixture>.json (which model file it
was computed from, by SHA-256, the versions, grad_norm_names and the tensors);
model_parity_test.cpp uses them when the fixture has no gradient keys. The fixtures themselves are
not copied. It refuses to write when its loss differs from the fixture's own forward reference.

Run with transformers 4.40.2, the version that made the fixtures: later versions changed XGLM's
loss (the last position is ignored instead of scored against the pad id; 8.112 vs 8.130 here).
4.40.2 runs on the project's torch 2.11 (CPU) from a side folder:
  .venv/bin/pip install --target /tmp/tf440 --no-deps transformers==4.40.2 tokenizers==0.19.1 \
      huggingface-hub==0.23.4
  PYTHONPATH=/tmp/tf440 .venv/bin/python tests/parity/make_gradient_refs.py ../shared/fixtures
"""
import hashlib
import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

# A few parameters of every kind (embeddings, attention, LayerNorm, FFN, head) are stored in full,
# the norms of all gradients in grad_norms: the BERT fixture's selection.
SELECT = {
    "xlmr_tiny": ["roberta.embeddings.word_embeddings.weight",
                  "roberta.encoder.layer.0.attention.self.query.weight",
                  "roberta.encoder.layer.1.output.LayerNorm.weight",
                  "classifier.dense.weight", "classifier.out_proj.weight",
                  "classifier.out_proj.bias"],
    "xglm_tiny": ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                  "model.layers.1.final_layer_norm.weight", "model.layers.1.fc2.weight",
                  "model.layer_norm.weight", "model.layer_norm.bias"],
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    fixtures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("XLT_SHARED", "../shared"), "fixtures")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradient_refs")
    torch.set_num_threads(1)
    for name, selected in SELECT.items():
        folder = os.path.join(fixtures, name)
        manifest = json.load(open(os.path.join(folder, "manifest.json")))
        ref = load_file(os.path.join(folder, "ref.safetensors"))
        cls = getattr(transformers, manifest["model_class"])
        model = cls.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        model.eval()
        inputs = {k: ref[k] for k in ("input_ids", "attention_mask", "labels") if k in ref}
        loss = model(**inputs).loss
        # The same model and inputs as the fixture's own forward reference (transformers 4.40.2).
        if abs(float(loss.detach()) - float(ref["loss"])) > 1e-5:
            sys.exit(f"{name}: loss {float(loss.detach())} differs from the fixture's {float(ref['loss'])}")
        loss.backward()
        named = list(model.named_parameters())  # tied weights appear once, as in HF
        out = {"loss": loss.detach().reshape(1),
               "grad_norms": torch.stack([p.grad.norm() for _, p in named])}
        params = dict(named)
        for n in selected:
            out["grad." + n] = params[n].grad.clone()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, foreach=False)
        opt.step()
        for n in selected:
            st = opt.state[params[n]]
            out["adamw_param." + n] = params[n].detach().clone()
            out["adamw_exp_avg." + n] = st["exp_avg"].clone()
            out["adamw_exp_avg_sq." + n] = st["exp_avg_sq"].clone()
        out = {k: v.contiguous() for k, v in out.items()}
        path = os.path.join(out_dir, name + ".safetensors")
        save_file(out, path)
        meta = {
            "generator": "tests/parity/make_gradient_refs.py: transformers %s on PyTorch %s, CPU, "
                         "float32, 1 thread, eval mode" % (transformers.__version__,
                                                           torch.__version__),
            "fixture": name,
            "model_class": manifest["model_class"],
            "model_safetensors_sha256": sha256(os.path.join(folder, "model.safetensors")),
            "inputs": "the fixture's ref.safetensors input_ids, attention_mask, labels",
            "grad_norm_names": [n for n, _ in named],
            "tensors": sorted(out),
            "adamw": "torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, "
                     "foreach=False), one step after the backward",
        }
        with open(os.path.join(out_dir, name + ".json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        print(name, "loss", float(loss.detach()), "fixture", float(ref["loss"]), "->", path, "(%d tensors)" % len(out))


if __name__ == "__main__":
    main()
