#!/usr/bin/python3
"""Writes the .npy files of tests/data/npy (tests/test_npy.c): arrays of the
CSV test data in each dtype and format version, and malformed files.

Run from the repository root with Debian's python3-numpy:
    /usr/bin/python3 tests/gen_npy.py
"""
import struct

import numpy as np

OUT = "tests/data/npy/"


def header(descr, shape, fortran=False, version=1, raw=None):
    """The bytes of a .npy preamble and header (padded to 64 as NumPy does)."""
    text = raw if raw is not None else "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False", repr(tuple(shape)))
    body = text.encode("utf-8" if version == 3 else "latin1")
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(body) + 1) % 64) % 64
    body += b" " * pad + b"\n"
    lenb = struct.pack("<H", len(body)) if version == 1 else struct.pack("<I", len(body))
    return b"\x93NUMPY" + bytes([version, 0]) + lenb + body


def write(name, data):
    with open(OUT + name, "wb") as f:
        f.write(data)


def main():
    reg = np.loadtxt("tests/data/regression.csv", delimiter=",", dtype=np.float64)
    ids = np.loadtxt("tests/data/token_ids.csv", delimiter=",", dtype=np.int64)[:40]
    np.save(OUT + "reg_x.npy", reg[:, 1:].astype(np.float32))      # 1.0, <f4
    np.save(OUT + "reg_y.npy", reg[:, :1])                        # 1.0, <f8, (n, 1)
    # the same inputs as two arrays (input npy(...)): x1 x2, and x3 x4 in float64
    np.save(OUT + "reg_xa.npy", reg[:, 1:3].astype(np.float32))
    np.save(OUT + "reg_xb.npy", reg[:, 3:5])
    x = ids[:, 1:]
    y = ids[:, 0].astype(np.int32)
    write("ids_x.npy", header("<i8", x.shape, version=2) + x.astype("<i8").tobytes())
    write("ids_y.npy", header("<i4", y.shape, version=3) + y.astype("<i4").tobytes())
    # malformed, each beside a good label or input
    small = np.arange(12, dtype="<f4").reshape(3, 4)
    write("bad_magic.npy", b"\x93NUMPZ" + header("<f4", (3, 4))[6:] + small.tobytes())
    write("bad_version.npy", b"\x93NUMPY\x04\x00" + header("<f4", (3, 4))[8:] + small.tobytes())
    write("truncated_preamble.npy", b"\x93NUMPY\x01\x00\x76")
    write("truncated_header.npy", header("<f4", (3, 4))[:40])
    write("truncated_data.npy", header("<f4", (3, 4)) + small.tobytes()[:20])
    write("extra_data.npy", header("<f4", (3, 4)) + small.tobytes() + b"\0\0\0\0")
    write("not_dict.npy", header("", (), raw="['descr', '<f4']") + small.tobytes())
    write("missing_shape.npy", header("", (), raw="{'descr': '<f4', 'fortran_order': False}")
          + small.tobytes())
    write("negative_shape.npy", header("", (), raw="{'descr': '<f4', 'fortran_order': False, "
                                                    "'shape': (3, -4), }") + small.tobytes())
    write("scalar.npy", header("<f4", ()) + small.tobytes()[:4])
    write("fortran.npy", header("<f4", (3, 4), fortran=True) + small.tobytes())
    write("big_endian.npy", header(">f4", (3, 4)) + small.astype(">f4").tobytes())
    write("uint8.npy", header("|u1", (3, 4)) + bytes(12))
    write("short_label.npy", header("<i4", (2,)) + np.array([0, 1], "<i4").tobytes())
    big = small.astype("<f8")
    big[2, 1] = 1e300
    write("f64_range.npy", header("<f8", (3, 4)) + big.tobytes())
    wide = np.array([0, 1, 1 << 40], "<i8")
    write("i64_range.npy", header("<i8", (3,)) + wide.tobytes())
    write("good_x.npy", header("<f4", (3, 4)) + small.tobytes())


if __name__ == "__main__":
    main()
