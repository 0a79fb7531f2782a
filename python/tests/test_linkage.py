"""PyTorch 2.x's libtorch.so exports its own std::filesystem copies; a module that binds to them
crashes (SIGSEGV) in std::filesystem calls (see tests/linkage). The extension must bind to
libstdc++, whether or not `import torch` loaded libtorch first. Each order runs in a fresh
interpreter, since a crash would take pytest down."""

import subprocess
import sys

import pytest

from conftest import DEMO

SCRIPT = """
import sys, tempfile, pathlib
{first}
import xlt
with tempfile.TemporaryDirectory() as d:
    out = pathlib.Path(d) / "m"
    # create_directories, rename, remove_all: the calls that crashed.
    xlt.init_model("bert", {config!r}, out, seed=1, num_labels=3)
    xlt.init_model("bert", {config!r}, out, seed=2, num_labels=3)  # replaces the folder
    m = xlt.Model.from_pretrained(out)
    m.save_pretrained(pathlib.Path(d) / "copy")
print("ok")
"""


@pytest.mark.parametrize("first", ["", "import torch"], ids=["xlt-alone", "torch-first"])
def test_filesystem_calls_do_not_crash(first):
    if first:
        pytest.importorskip("torch")
    code = SCRIPT.format(first=first, config=str(DEMO / "bert-config.json"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    assert r.stdout.strip() == "ok"
