"""Searching through an alias while it flips between two collections of different compressors (issue 22, finding 1).

Collection A is written by an SMEC compressor (its untrained form: corpus PCA), B by truncation;
both store ``d8`` (and ``full`` where the target holds several vector fields), so a query encoded
by one compressor and searched in the other's space returns wrong neighbours without any error.
A thread flips the alias ``live`` between A and B as fast as the engine allows while a reader
opened through ``live`` searches: every answer must have the recall of A's or of B's answer to
that query — never a mix. Run on every target with aliases (servers when reachable).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from capabilities import single_vector
from smec_vdb.baselines.truncation import TruncationCompressor
from smec_vdb.collection import SmecCollection
from smec_vdb.compress.smec import SMECCompressor
from smec_vdb.search import plan_stages

D, N, QUERIES, K, CANDIDATES = 32, 300, 30, 10, 20
ROUNDS, FLIPS, SECONDS = 4, 20, 60  # search every query at least ROUNDS times, until FLIPS flips (at most SECONDS)


def corpus() -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors with a decaying spectrum in a random basis (so PCA and truncation differ), and queries."""
    rng = np.random.default_rng(3)
    basis, _ = np.linalg.qr(rng.normal(size=(D, D)))
    x = (rng.normal(size=(N + QUERIES, D)) * np.linspace(3.0, 0.1, D)) @ basis.T
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x[:N], x[N:]


def recall(ids: list, exact: np.ndarray) -> float:
    return len(set(ids) & set(exact.tolist())) / len(exact)


def test_a_search_through_a_flipping_alias_answers_from_one_space(target, new_name, tmp_path):
    backend = target.open()
    if not backend.supports_aliases:
        pytest.skip(f"{target.name} has no aliases")
    docs, queries = corpus()
    exact = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :K]
    keep_full = not single_vector(backend)
    names = {"A": new_name(), "B": new_name()}
    compressors = {"A": SMECCompressor.from_pca(torch.from_numpy(docs), [8]).eval(), "B": TruncationCompressor(D, [8])}
    reference: dict[str, list[float]] = {}
    for key, comp in compressors.items():
        comp.save(tmp_path / key)
        col = SmecCollection.create(backend, names[key], comp, dims=[8], keep_full=keep_full,
                                    compressor_path=tmp_path / key)
        col.upsert(list(range(N)), docs)
        reference[key] = [recall([h.id for h in col.search(q, K, candidates=CANDIDATES)], e) for q, e in zip(queries, exact)]
    # the check can fail: A's encoding searched in B's space (what a swap between encode and search did)
    coarse_to_fine = ["d8", "full"] if keep_full else ["d8"]
    mixed = [recall([h.id for h in backend.search_stages(names["B"], plan_stages(
        {"d8": compressors["A"].encode(q, 8)[0], "full": q}, coarse_to_fine, K, CANDIDATES))], e)
        for q, e in zip(queries, exact)]
    assert sum(m < min(a, b) for m, a, b in zip(mixed, reference["A"], reference["B"])) >= QUERIES // 3

    alias = new_name()
    backend.create_alias(alias, names["A"])
    reader = SmecCollection.open(backend, alias)
    stop, flips = threading.Event(), [0]

    def flip() -> None:
        while not stop.is_set():
            backend.create_alias(alias, names["B" if flips[0] % 2 == 0 else "A"])
            flips[0] += 1

    flipper = threading.Thread(target=flip)
    flipper.start()
    answers, bound, rounds, started = [], set(), 0, time.monotonic()
    try:
        while rounds < ROUNDS or (flips[0] < FLIPS and time.monotonic() - started < SECONDS):
            rounds += 1
            for qi, q in enumerate(queries):
                answers.append((qi, recall([h.id for h in reader.search(q, K, candidates=CANDIDATES)], exact[qi])))
                bound.add(reader.bound_to)
    finally:
        stop.set()
        flipper.join()
    wrong = [(qi, r) for qi, r in answers if r not in (reference["A"][qi], reference["B"][qi])]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers mixed the two spaces (query, recall): {wrong[:5]}"
    assert flips[0] >= 2 and bound == set(names.values()), "the reader did not follow the alias to both collections"
