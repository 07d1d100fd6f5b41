"""Which evaluation fingerprints have a twin among the training fingerprints, and how close.

Why three stages: scoring every pair by cross-correlation is ~10 M pairs for RAVDESS against the
Kaggle set. A duration check and a 96-number key (mean spectrum and its movement) pick a few
candidates per evaluation clip in one matrix product; those get the coarse score, the best
normalised cross-correlation of the band-energy sequences over small time offsets, which also
finds how the two line up. The coarse score is high for any reading of the same words with the
same timing (another speaker, another take), so it only selects: the candidates at or above
COARSE_MIN are verified on the harmonic fine structure (:func:`fine_score`) at that alignment,
and the fine score is the one compared with the threshold.

Limits: at most CANDIDATES matches per evaluation clip; a copy with speech (not silence) cut off
keeps a key of ~0.97 and can rank below other takes of the same speaker in a large corpus
(bench/BENCHMARKS.md, leakage audit notes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ser.audit.fingerprint import HOP, SR, Fingerprint

DEFAULT_THRESHOLD = 0.8  # on the fine score (bench/BENCHMARKS.md: copies vs other readings)
COARSE_MIN = 0.6  # coarse score below this: not verified (other takes score up to 0.98 here)
FINE_SLACK = 2  # frames either side of the coarse alignment tried by the fine score
MAX_OFFSET_S = 0.7  # 0.5 s of added/trimmed silence plus the slack of the silence trimming
MAX_DURATION_GAP_S = 1.1  # 0.5 s cut at each end of a copy (speech included) plus slack
MIN_OVERLAP = 0.7  # of the shorter clip's frames, at the offset scored
MIN_OVERLAP_FRAMES = 32  # 0.5 s: shorter overlaps correlate by chance; such clips never match
CANDIDATES = 16  # best keys per evaluation clip that get the exact score
MIN_KEY = 0.9  # key cosine below this: not the same recording, not scored


def _cumsums(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running sums over time (axis -2) of each band (..., T+1, B) and of each frame's energy
    (..., T+1), zero first, so that a sum over frames [lo, hi) is one subtraction."""
    x64 = x.astype(np.float64)
    bands = np.cumsum(x64, axis=-2)
    energy = np.cumsum(np.einsum("...tb,...tb->...t", x64, x64), axis=-1)
    pad_b = [(0, 0)] * (x.ndim - 2) + [(1, 0), (0, 0)]
    pad_e = [(0, 0)] * (x.ndim - 2) + [(1, 0)]
    return np.pad(bands, pad_b), np.pad(energy, pad_e)


def best_scores(a: np.ndarray, others: list[np.ndarray],
                max_offset: int = int(round(MAX_OFFSET_S * SR / HOP))) -> np.ndarray:
    """The coarse score of ``a`` against each of ``others`` (see :func:`best_alignments`)."""
    return best_alignments(a, others, max_offset)[0]


def best_alignments(a: np.ndarray, others: list[np.ndarray],
                    max_offset: int = int(round(MAX_OFFSET_S * SR / HOP))
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For each ``b`` in ``others``: max over offsets ``d`` (|d| <= max_offset frames) of the
    correlation of ``a[t]`` with ``b[t + d]`` over their overlap (at least MIN_OVERLAP of the
    shorter one and 0.5 s; 0.0 where no offset allows that), each band centred on its mean over the overlap, so that a copy with speech
    cut off still scores near 1.0. All candidates at once: (K, offsets) arrays.

    Returns (scores, offsets): the best score and the offset ``d`` (frames) where it is."""
    if not others:
        return np.zeros(0), np.zeros(0, int)
    ta = a.shape[0]
    tb = np.array([b.shape[0] for b in others])
    tb_max = int(tb.max())
    # circular correlation is exact for |d| <= max_offset once nfft >= longest + max_offset
    nfft = 1 << int(np.ceil(np.log2(max(ta, tb_max) + max_offset + 1)))
    stack = np.zeros((len(others), tb_max, a.shape[1]), np.float32)
    for k, b in enumerate(others):
        stack[k, : b.shape[0]] = b
    fa = np.conj(np.fft.rfft(a, nfft, axis=0))  # (F, B)
    fb = np.fft.rfft(stack, nfft, axis=1)  # (K, F, B)
    cross = np.fft.irfft(np.einsum("fb,kfb->kf", fa, fb), nfft, axis=1)  # c[d] at d mod nfft

    d = np.arange(-max_offset, max_offset + 1)[None, :]  # (1, D)
    lo = np.broadcast_to(np.minimum(np.maximum(0, -d), ta), (len(others), d.shape[1]))  # [lo, hi)
    hi = np.minimum(ta, tb[:, None] - d)
    ok = (hi - lo) >= np.maximum(MIN_OVERLAP * np.minimum(ta, tb), MIN_OVERLAP_FRAMES)[:, None]
    hi = np.where(ok, hi, lo)  # empty overlap where not allowed; masked below
    lo_b = np.clip(lo + d, 0, tb_max)
    hi_b = np.clip(hi + d, 0, tb_max)
    sa, ea = _cumsums(a)
    sb, eb = _cumsums(stack)
    n = np.maximum(hi - lo, 1).astype(np.float64)
    mean_a = (sa[hi] - sa[lo]) / n[..., None]  # (K, D, B): band means over the overlap
    rows = np.arange(len(others))[:, None]
    mean_b = (sb[rows, hi_b] - sb[rows, lo_b]) / n[..., None]
    num = cross[rows, d % nfft] - n * np.einsum("kdb,kdb->kd", mean_a, mean_b)
    va = ea[hi] - ea[lo] - n * np.einsum("kdb,kdb->kd", mean_a, mean_a)
    vb = eb[rows, hi_b] - eb[rows, lo_b] - n * np.einsum("kdb,kdb->kd", mean_b, mean_b)
    score = np.where(ok, num / np.sqrt(np.maximum(va * vb, 1e-12)), 0.0)
    best = score.argmax(axis=1)
    return score[rows[:, 0], best], d[0, best]


def fine_score(a: np.ndarray, b: np.ndarray, offset: int, slack: int = FINE_SLACK) -> float:
    """Cosine similarity of two harmonic fine structures (T, N_FINE) with ``a[t]`` against
    ``b[t + d]``, best over ``d`` within ``slack`` frames of ``offset`` (the coarse alignment)
    in quarter frames: between two frames ``b`` is interpolated linearly, since a copy's
    content can start anywhere within a 16 ms frame and a harmonic pattern 8 ms off already
    scores ~0.75. Silent frames are zero and weigh nothing; 0.0 when the overlap has no voiced
    frames."""
    best = 0.0
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    for d in range(offset - slack, offset + slack + 1):
        lo, hi = max(0, -d), min(fa.shape[0], fb.shape[0] - d - 1)
        if hi - lo < MIN_OVERLAP_FRAMES:
            continue
        x = fa[lo:hi]
        y0, y1 = fb[lo + d:hi + d], fb[lo + d + 1:hi + d + 1]
        xx = float(np.einsum("tb,tb->", x, x))
        dots = (np.einsum("tb,tb->", x, y0), np.einsum("tb,tb->", x, y1))
        grams = (np.einsum("tb,tb->", y0, y0), np.einsum("tb,tb->", y0, y1),
                 np.einsum("tb,tb->", y1, y1))
        for frac in (0.0, 0.25, 0.5, 0.75):  # y = (1 - frac) y0 + frac y1, by its dot products
            w0, w1 = 1.0 - frac, frac
            xy = w0 * dots[0] + w1 * dots[1]
            yy = w0 * w0 * grams[0] + 2 * w0 * w1 * grams[1] + w1 * w1 * grams[2]
            if xx > 0 and yy > 0:
                best = max(best, float(xy / np.sqrt(xx * yy)))
    return best


def score_pairs(a: Fingerprint, others: list[Fingerprint]) -> tuple[np.ndarray, np.ndarray]:
    """(coarse, fine) scores of ``a`` against each of ``others``: the coarse score finds the
    alignment, the fine score is taken there."""
    coarse, offsets = best_alignments(a.frames, [o.frames for o in others])
    fine = np.array([fine_score(a.fine, o.fine, int(d)) for o, d in zip(others, offsets)])
    return coarse, fine


def find_matches(eval_fps: dict[str, Fingerprint], train_fps: dict[str, Fingerprint],
                 threshold: float = DEFAULT_THRESHOLD, candidates: int = CANDIDATES,
                 keep_below: bool = False) -> pd.DataFrame:
    """One row per (eval_path, train_path) whose fine score is at least ``threshold``, best
    first per eval; ``coarse`` is the candidate's coarse score.

    ``keep_below``: also return the scored candidates under the threshold or COARSE_MIN (for
    calibration; their fine score is computed all the same).
    """
    columns = ["eval_path", "train_path", "score", "coarse"]
    if not eval_fps or not train_fps:
        return pd.DataFrame(columns=columns)
    e_paths, t_paths = list(eval_fps), list(train_fps)
    e_keys = np.stack([eval_fps[p].key for p in e_paths])
    t_keys = np.stack([train_fps[p].key for p in t_paths])
    e_dur = np.array([eval_fps[p].duration for p in e_paths])
    t_dur = np.array([train_fps[p].duration for p in t_paths])
    t_frames = [train_fps[p].frames for p in t_paths]
    rows = []
    k = min(candidates, len(t_paths))
    for start in range(0, len(e_paths), 256):  # bounded memory for the similarity block
        sim = e_keys[start:start + 256] @ t_keys.T
        sim[np.abs(e_dur[start:start + 256, None] - t_dur[None, :]) > MAX_DURATION_GAP_S] = -1.0
        sim[sim < MIN_KEY] = -1.0
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        for row, cand in enumerate(top):
            cand = cand[sim[row, cand] > -1.0]
            if cand.size == 0:
                continue
            i = start + row
            e_fp = eval_fps[e_paths[i]]
            coarse, offsets = best_alignments(e_fp.frames, [t_frames[j] for j in cand])
            for j, c, d in zip(cand, coarse, offsets):
                if c < COARSE_MIN and not keep_below:
                    continue  # the fine score costs ~1 ms a pair: only for likely copies
                fine = fine_score(e_fp.fine, train_fps[t_paths[j]].fine, int(d))
                if keep_below or (fine >= threshold and c >= COARSE_MIN):
                    rows.append((e_paths[i], t_paths[j], round(fine, 4), round(float(c), 4)))
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["eval_path", "score", "train_path"], ascending=[True, False, True],
                           ignore_index=True)
