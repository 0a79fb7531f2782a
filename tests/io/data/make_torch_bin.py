#!/usr/bin/python3
"""Writes the torch.save fixtures of tests/io/torch_pickle_test.cpp into tests/io/data/torch_bin/.

Run once with Debian's PyTorch (`apt-get install python3-torch`; 1.13.1 made the committed
files): `/usr/bin/python3 tests/io/data/make_torch_bin.py`. The outputs are committed, so the
C++ tests need no Python. For every real checkpoint the same tensors are written as a
.safetensors file (by hand, below: the safetensors package is not in Debian) that the C++
reader's output must equal byte for byte. The malicious pickles are assembled opcode by opcode
in the same zip container torch.save writes; nothing here ever unpickles them.
"""
import collections
import json
import os
import struct
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_bin")

ST_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header padded with spaces to 8 bytes,
    then the tensors' bytes in name order."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def state_dict():
    torch.manual_seed(0)
    model = torch.nn.Sequential(collections.OrderedDict(linear=torch.nn.Linear(4, 3)))
    sd = model.state_dict()  # an OrderedDict with _metadata: pickled with BUILD
    sd["f16"] = torch.tensor([[-1.5, 0.25, 65504.0], [6.1e-5, -0.0, 3.14159]], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -2.5, 3.0e38, 1.0e-3], dtype=torch.bfloat16)
    sd["f64"] = torch.tensor([1.0 / 3.0, -2.0e300], dtype=torch.float64)
    sd["i64"] = torch.tensor([0, -1, 2**40, -(2**62), 7], dtype=torch.int64)
    sd["i32"] = torch.tensor([-(2**31), 2**31 - 1, 5], dtype=torch.int32)
    sd["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 17, 3], dtype=torch.uint8)
    sd["mask"] = torch.tensor([True, False, True])
    base = torch.arange(20, dtype=torch.float32).reshape(4, 5) / 4
    sd["shared.base"] = base
    sd["shared.row"] = base[1]  # same storage, offset 5
    sd["shared.col"] = base[:, 2]  # offset 2, stride 5
    sd["shared.t"] = base.t()  # strides (1, 5)
    sd["strided"] = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)[:, ::2, 1:3]
    sd["expanded"] = torch.tensor([1.5, -2.0]).expand(3, 2)  # stride 0
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.tensor([[0.5, -0.5]]))  # _rebuild_parameter
    half_base = torch.arange(12, dtype=torch.float16).reshape(3, 4)
    sd["half.view"] = half_base[1:, 1::2]  # a non-contiguous float16 view
    return sd


def stored_zip(path, prefix, pickle_bytes, records=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pickle_bytes)
        for name, data in records:
            z.writestr(prefix + "/data/" + name, data)
        z.writestr(prefix + "/version", "3\n")


def binunicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(OUT, "state_dict.bin"))
    write_safetensors(os.path.join(OUT, "state_dict.safetensors"), sd)

    # Protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) and another archive folder name.
    small = collections.OrderedDict(a=torch.arange(6, dtype=torch.int64).reshape(2, 3).t(),
                                    b=torch.tensor([2.0, 4.0], dtype=torch.bfloat16))
    torch.save(small, os.path.join(OUT, "protocol4.bin"), pickle_protocol=4)
    with zipfile.ZipFile(os.path.join(OUT, "protocol4.bin")) as z:
        assert z.namelist()[0] == "protocol4/data.pkl", z.namelist()
    write_safetensors(os.path.join(OUT, "protocol4.safetensors"), small)

    # The pre-1.6 format, which xlt rejects with a clear message.
    torch.save(small, os.path.join(OUT, "legacy.bin"), _use_new_zipfile_serialization=False)

    # Malicious pickles: each must be refused, naming the global or opcode.
    evil = {
        # os.system("touch ...") via GLOBAL + REDUCE.
        "evil_os_system.bin": b"\x80\x02cos\nsystem\n" + binunicode("touch /tmp/xlt-pwned") +
        b"\x85R.",
        # A callable outside the allowed set, reached through STACK_GLOBAL (protocol 4).
        "evil_stack_global.bin": b"\x80\x04" + binunicode("builtins") + binunicode("eval") +
        b"\x93" + binunicode("1+1") + b"\x85R.",
        # An allowed global that is not a callable (a storage class) passed to REDUCE.
        "evil_reduce_storage.bin": b"\x80\x02ctorch\nFloatStorage\n)R.",
        # INST: the protocol-0 opcode that instantiates any class.
        "evil_inst.bin": b"\x80\x02(X\x02\x00\x00\x00idisubprocess\nPopen\n.",
        # A byte that is no pickle opcode.
        "evil_bad_opcode.bin": b"\x80\x02\xff.",
    }
    for name, pkl in evil.items():
        stored_zip(os.path.join(OUT, name), "archive", pkl)

    manifest = {
        "generator": "tests/io/data/make_torch_bin.py",
        "torch_version": torch.__version__,
        "files": sorted(os.listdir(OUT)),
    }
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
