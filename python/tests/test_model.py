"""xlt.Model.forward against Hugging Face's outputs in the fixture folders (any folder holding
ref.safetensors), and the torch return path."""

import json

import numpy as np
import pytest

import xlt
from conftest import FIXTURES, read_safetensors


def model_folders():
    if not FIXTURES.exists():
        return []
    return sorted(p.parent for p in FIXTURES.rglob("ref.safetensors"))


def test_model_fixtures_present():
    from conftest import need

    need(FIXTURES / "bert_tiny" / "ref.safetensors", "the model reference fixtures")
    assert len(model_folders()) >= 3


def close(a, b, folder, name):
    # Forward tensors to 1e-5 absolute (fixtures/README.md). XGLM's pre-LayerNorm residual stream
    # grows to |h| ~ 20, so its tensors also get a 1e-6 relative part, as the C++ parity tests.
    rtol = 1e-6 if "xglm" in folder.name else 0.0
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=rtol, err_msg=f"{folder.name}: {name}")


@pytest.mark.parametrize("folder", model_folders(), ids=lambda p: p.name)
def test_forward_matches_hugging_face(folder):
    ref = read_safetensors(folder / "ref.safetensors")
    model = xlt.Model.from_pretrained(folder)
    mask = ref["attention_mask"]
    out = model.forward(ref["input_ids"], attention_mask=mask,
                        token_type_ids=ref.get("token_type_ids"), hidden_states=True,
                        attentions=True)
    real = mask.astype(bool)  # padding positions hold values nothing should read
    if "last_hidden_state" in ref:
        close(out["last_hidden_state"][real], ref["last_hidden_state"][real], folder,
              "last_hidden_state")
    for i, h in enumerate(out["hidden_states"]):
        close(h[real], ref[f"hidden_states.{i}"][real], folder, f"hidden_states.{i}")
    for i, a in enumerate(out["attentions"]):
        want = ref[f"attentions.{i}"]
        # Rows of real query tokens; their probabilities over padded keys are 0 in both.
        for b in range(a.shape[0]):
            q = real[b]
            close(a[b][:, q], want[b][:, q], folder, f"attentions.{i}")
    if "pooler_output" in ref:
        close(out["pooler_output"], ref["pooler_output"], folder, "pooler_output")
    if model.model_type != "xglm":
        close(out["logits"], ref["logits"], folder, "logits")
    else:
        close(out["logits"][real], ref["logits"][real], folder, "logits")


def test_loss_and_torch_tensors():
    folder = FIXTURES / "bert_tiny"
    if not folder.exists():
        pytest.skip("fixtures absent")
    ref = read_safetensors(folder / "ref.safetensors")
    model = xlt.Model.from_pretrained(folder)
    out = model.forward(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"],
                        labels=ref["labels"])
    assert abs(out["loss"] - float(ref["loss"].reshape(-1)[0])) < 1e-5
    torch = pytest.importorskip("torch")
    pt = model.forward(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"],
                       labels=ref["labels"], return_tensors="pt")
    assert isinstance(pt["logits"], torch.Tensor)
    assert isinstance(pt["loss"], torch.Tensor) and pt["loss"].dim() == 0  # as transformers
    assert abs(pt["loss"].item() - out["loss"]) < 1e-6
    np.testing.assert_array_equal(pt["logits"].numpy(), out["logits"])
    # torch tensors are accepted as inputs too.
    ids, mask, types = (torch.from_numpy(ref[k].copy())
                        for k in ("input_ids", "attention_mask", "token_type_ids"))
    again = model.forward(ids, mask, types)
    np.testing.assert_array_equal(again["logits"], out["logits"])


def test_properties_and_save(tiny_bert, tmp_path):
    model = xlt.Model.from_pretrained(tiny_bert)
    assert model.model_type == "bert" and model.num_labels == 3
    assert json.loads((tiny_bert / "config.json").read_text())["hidden_size"] == model.config["hidden_size"]
    model.save_pretrained(tmp_path / "copy")
    again = xlt.Model.from_pretrained(tmp_path / "copy")
    a, b = model.named_parameters(), again.named_parameters()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_transformers_output_names(tiny_bert):
    model = xlt.Model.from_pretrained(tiny_bert)
    ids = [[2, 7, 9, 3]]
    ours = model.forward(ids, hidden_states=True, attentions=True)
    hf = model.forward(ids, output_hidden_states=True, output_attentions=True)
    assert len(hf["hidden_states"]) == len(ours["hidden_states"]) == model.num_layers + 1
    for a, b in zip(hf["attentions"], ours["attentions"]):
        np.testing.assert_array_equal(a, b)


def test_named_parameters_while_another_thread_evaluates(tiny_bert):
    # evaluate() holds the model while it reports progress through Python (taking the GIL);
    # named_parameters() used to wait for the model while holding the GIL: a deadlock. Run in a
    # subprocess, so that a deadlock fails the test instead of hanging it.
    import subprocess
    import sys

    from conftest import DEMO

    script = f"""
import threading, time, xlt
model = xlt.Model.from_pretrained({str(tiny_bert)!r})
busy = threading.Event()
def report(event):
    busy.set()
    time.sleep(0.05)  # hold the model a while inside a progress report
out = []
worker = threading.Thread(target=lambda: out.append(xlt.evaluate(
    model, {{"en": {str(DEMO / "dev-en.tsv")!r}}}, samples=40, batch_size=4, callback=report)))
worker.start()
assert busy.wait(60)
for _ in range(5):
    assert "bert.embeddings.word_embeddings.weight" in model.named_parameters()
worker.join()
print("n", out[0]["languages"]["en"]["n"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "n 40" in done.stdout
