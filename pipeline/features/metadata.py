"""A film's metadata as a small numeric vector (the MovieScope paper's metadata branch, and a token of the
paper's head), fitted on the training films only.

Slots, in order (:func:`metadata_columns` names each one):

* ``film_row``: 1 when the films table has a row for the film (else every other slot is "unknown");
* ``runtime``: log of the minutes, standardised with the training films' mean and std; 0 when unknown,
  with ``runtime_unknown`` = 1;
* ``year``: release year standardised the same way; ``year_unknown``;
* ``certification=<value>``: one slot per rating held by at least :data:`MIN_FILMS` training films,
  and ``certification=unknown`` for a missing, rare or unseen one (a test film's new rating lands
  there, never in a slot of its own);
* ``language=<code>``: the first language code, the same way (``language=unknown``);
* names (``fusion.metadata_names``): ``hash`` puts each director into one of ``fusion.metadata_buckets``
  slots and each billed cast name into one of as many more, by the sha256 of the lower-cased name (a
  stable hash: the same name, the same slot, on every machine); ``drop`` leaves names out. Hashing
  needs no vocabulary from train, so a name first seen at test time still lands in a slot, sharing
  it with others. ``onehot`` is the MovieScope paper's encoding: one slot per director and per actor
  among the first :data:`ONEHOT_CAST` billed (``director=<name>``, ``cast=<name>``), its vocabulary the
  names credited on at least :data:`MIN_NAME_FILMS` training films (lower-cased); any other name, a test
  film's new one included, sets no slot. The paper's vocabulary is its whole set's; here it is fitted on
  train only, and a name of one training film is left out (its slot could only memorise that film).

Everything fitted (means, stds, category lists) is plain data (:func:`fit_metadata`), saved in the
checkpoint, so ``predict`` builds the same vector.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import numpy as np
import polars as pl

#: A category needs this many training films to get its own slot.
MIN_FILMS = 5
#: ``onehot``: a director or actor needs this many training films to get a slot.
MIN_NAME_FILMS = 2
#: ``onehot``: the billed actors read per film (the MovieScope paper's three).
ONEHOT_CAST = 3


def _first_language(value: str | None) -> str | None:
    return (value.split("|")[0].strip() or None) if value else None


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in value.split("|") if n.strip()] if value else []


def _bucket(name: str, buckets: int) -> int:
    return int.from_bytes(hashlib.sha256(name.lower().encode("utf-8")).digest()[:8], "big") % buckets


def _moments(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    mean, std = round(float(np.mean(values)), 6), round(float(np.std(values)), 6)
    return mean, std if std > 1e-6 else 1.0  # one value only: centred, not scaled


def _categories(values: list[str | None]) -> list[str]:
    counts = Counter(v for v in values if v)
    return sorted(v for v, n in counts.items() if n >= MIN_FILMS)


def _onehot_names(field: str, value: str | None) -> list[str]:
    """The names of a film's ``director`` or ``cast`` value that ``onehot`` reads: lower-cased, each once, the
    cast cut to its first :data:`ONEHOT_CAST` billed."""
    names = [n.lower() for n in _names(value)]
    return list(dict.fromkeys(names[:ONEHOT_CAST] if field == "cast" else names))


def _name_vocabulary(values: list[str | None], field: str) -> list[str]:
    counts = Counter(n for v in values for n in _onehot_names(field, v))
    return sorted(n for n, k in counts.items() if k >= MIN_NAME_FILMS)


def fit_metadata(train_films: pl.DataFrame, names: str = "onehot", buckets: int = 256) -> dict[str, Any]:
    """The metadata spec fitted on the training films (``data/films.parquet`` rows of train films)."""
    runtimes = [math.log(r) for r in train_films["runtime_min"].drop_nulls().to_list()]
    years = [float(y) for y in train_films["release_year"].drop_nulls().to_list()]
    return {
        "runtime": _moments(runtimes), "year": _moments(years),
        "certification": _categories(train_films["certification"].to_list()),
        "language": _categories([_first_language(v) for v in train_films["language"].to_list()]),
        "names": names, "buckets": buckets if names == "hash" else 0,
        **({field: _name_vocabulary(train_films[field].to_list(), field) for field in ("director", "cast")}
           if names == "onehot" else {}),
    }


#: The spec of a model that reads no metadata (its vectors are built, never read).
NO_METADATA: dict[str, Any] = {"runtime": (0.0, 1.0), "year": (0.0, 1.0), "certification": [], "language": [],
                               "names": "drop", "buckets": 0}


def metadata_columns(spec: dict[str, Any]) -> list[str]:
    """The name of every slot of the vector."""
    cols = ["film_row", "runtime", "runtime_unknown", "year", "year_unknown"]
    for field in ("certification", "language"):
        cols += [f"{field}={v}" for v in spec[field]] + [f"{field}=unknown"]
    for field in ("director", "cast"):
        cols += [f"{field}#{b}" for b in range(spec["buckets"])]
    for field in ("director", "cast"):  # onehot's vocabularies (absent from a hash or drop spec)
        cols += [f"{field}={name}" for name in spec.get(field, [])]
    return cols


def metadata_matrix(films: pl.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """(n, d) float32: one vector per row of ``films`` (columns of the films table), by ``spec``."""
    n, b = len(films), spec["buckets"]
    cert_slot = {v: i for i, v in enumerate(spec["certification"])}
    lang_slot = {v: i for i, v in enumerate(spec["language"])}
    out = np.zeros((n, len(metadata_columns(spec))), dtype=np.float32)
    (r_mean, r_std), (y_mean, y_std) = spec["runtime"], spec["year"]
    at_cert = 5
    at_lang = at_cert + len(cert_slot) + 1
    at_director = at_lang + len(lang_slot) + 1
    at_cast = at_director + b
    at_name = {"director": at_cast + b}
    at_name["cast"] = at_name["director"] + len(spec.get("director", []))
    name_slot = {field: {name: i for i, name in enumerate(spec.get(field, []))} for field in at_name}
    for i, f in enumerate(films.iter_rows(named=True)):
        out[i, 0] = float(bool(f["film_row"]))
        if f["runtime_min"] is not None:
            out[i, 1] = (math.log(f["runtime_min"]) - r_mean) / r_std
        else:
            out[i, 2] = 1.0
        if f["release_year"] is not None:
            out[i, 3] = (f["release_year"] - y_mean) / y_std
        else:
            out[i, 4] = 1.0
        out[i, at_cert + cert_slot.get(f["certification"], len(cert_slot))] = 1.0
        out[i, at_lang + lang_slot.get(_first_language(f["language"]), len(lang_slot))] = 1.0
        if b:
            for name in _names(f["director"]):
                out[i, at_director + _bucket(name, b)] += 1.0
            for name in _names(f["cast"]):
                out[i, at_cast + _bucket(name, b)] += 1.0
        for field, slots in name_slot.items():
            for name in _onehot_names(field, f[field]):
                if name in slots:
                    out[i, at_name[field] + slots[name]] = 1.0
    return out
