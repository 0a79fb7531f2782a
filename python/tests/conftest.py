"""Shared set-up of the Python package's tests: where the shared data, the reference fixtures and
the `xlt` CLI are, and small models made once per session with xlt.init_model.

XLT_SHARED (default ../shared beside the repository) and XLT_FIXTURES (default
$XLT_SHARED/fixtures) as for the C++ tests; XLT_CLI: the `xlt` binary to compare with (default:
build-python/xlt, built by `pip install .` on the same libtorch). What is missing is skipped,
except under CI=true, where it fails."""

import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("XLT_SHARED", REPO.parent / "shared"))
FIXTURES = pathlib.Path(os.environ.get("XLT_FIXTURES", SHARED / "fixtures"))
DEMO = REPO / "examples" / "demo"
IN_CI = os.environ.get("CI") == "true"


def need(path, what):
    """Skips (fails under CI=true) when `path` does not exist."""
    path = pathlib.Path(path)
    if not path.exists():
        message = f"{what} not found at {path} (set XLT_SHARED / XLT_FIXTURES / XLT_CLI)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def cli_path():
    env = os.environ.get("XLT_CLI")
    if env:
        return pathlib.Path(env)
    return REPO / "build-python" / "xlt"


@pytest.fixture(scope="session")
def cli():
    path = need(cli_path(), "the xlt CLI of the Python build")

    def run(*args, input=None):
        r = subprocess.run([str(path), *map(str, args)], input=input, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise AssertionError(f"xlt {' '.join(map(str, args))} exited {r.returncode}: "
                                 f"{r.stderr}")
        return r.stdout

    return run


def read_safetensors(path):
    """{name: NumPy array} of a safetensors file (F32/I64/I32 tensors)."""
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "F64": np.float64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in dtypes:
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        out[name] = np.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """The demo's random tiny BERT with a 3-label head, made once."""
    import xlt

    out = tmp_path_factory.mktemp("models") / "bert"
    xlt.init_model("bert", DEMO / "bert-config.json", out, seed=42, num_labels=3)
    return out


@pytest.fixture(scope="session")
def tiny_xglm(tmp_path_factory):
    import xlt

    # init_model copies the tokenizer files found beside the config: give it the XGLM ones.
    base = tmp_path_factory.mktemp("models")
    src = base / "xglm-src"
    src.mkdir()
    for f in (DEMO / "xglm").iterdir():
        if f.is_file() and f.name != "README.md":
            (src / f.name).write_bytes(f.read_bytes())
    (src / "config.json").write_bytes((DEMO / "xglm-config.json").read_bytes())
    xlt.init_model("xglm", src, base / "xglm", seed=42)
    return base / "xglm"
