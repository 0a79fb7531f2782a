#!/usr/bin/env python3
"""Reproduces the `geographic` column of data/linguistic_distance.tsv from URIEL's geo features.

lang2vec's geocoord_features.npz (PyPI package lang2vec 1.1.2: `pip download --no-deps lang2vec`,
unzip the wheel) gives every language 299 features GC_<lat>_<lon>: its great-circle distance to
that fixed point divided by 180 degrees. We locate each language at the latitude/longitude whose
distances to the 299 points fit its features best (least squares; 1-degree grid, then refined to
0.05 and 0.002 degrees) and print the great-circle distance from English divided by 180 degrees
(half the Earth's circumference). Needs numpy.

    python3 scripts/uriel_geographic.py PATH/TO/lang2vec/data/geocoord_features.npz
"""
import sys

import numpy as np

CODES = {"en": "eng", "de": "deu", "bg": "bul", "es": "spa", "fr": "fra", "ru": "rus",
         "el": "ell", "zh": "cmn", "vi": "vie", "ar": "arb", "th": "tha", "hi": "hin",
         "ur": "urd", "tr": "tur", "sw": "swh"}


def arc(lat1, lon1, lat2, lon2):
    """Great-circle distance in degrees (haversine)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * np.degrees(np.arcsin(np.sqrt(np.clip(a, 0, 1))))


def locate(features, points):
    best = None
    for step, span in [(1.0, None), (0.05, 2.0), (0.002, 0.1)]:
        if best is None:
            lats, lons = np.arange(-90, 90.01, step), np.arange(-180, 180, step)
        else:
            lats = np.arange(best[0] - span, best[0] + span + 1e-9, step)
            lons = np.arange(best[1] - span, best[1] + span + 1e-9, step)
        la, lo = (g.ravel() for g in np.meshgrid(lats, lons, indexing="ij"))
        err = np.zeros(la.shape)
        for (plat, plon), x in zip(points, features):
            err += (arc(la, lo, plat, plon) / 180.0 - x) ** 2
        k = int(np.argmin(err))
        best = (la[k], lo[k], float(np.sqrt(err[k] / len(features))))
    return best


def main():
    d = np.load(sys.argv[1])
    langs = list(d["langs"])
    data = d["data"][:, :, 0]
    points = [tuple(float(v) for v in f[3:].split("_")) for f in d["feats"]]
    where = {}
    for lang, iso in CODES.items():
        lat, lon, rms = locate(data[langs.index(iso)], points)
        where[lang] = (lat, lon)
        print(f"# {lang} {iso}: {lat:.3f} {lon:.3f} (RMS residual {rms:.5f})")
    print("lang\tgeographic")
    for lang in CODES:
        print(f"{lang}\t{arc(*where['en'], *where[lang]) / 180.0:.4f}")


if __name__ == "__main__":
    main()
