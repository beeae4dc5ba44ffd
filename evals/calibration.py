"""Does the critic earn its tokens? Its value of each submitted patch against the graded verdict.

AUC: the chance that a resolved instance's patch got a higher critic value than an unresolved one's
(ties count half); 0.5 is a coin. The calibration table bins the values and gives each bin's
resolved share: a calibrated critic's 0.8 bin resolves about 80%.
"""

from __future__ import annotations

BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def auc(pairs: list[tuple[float, bool]]) -> float | None:
    """Mann-Whitney AUC of (critic value, resolved) pairs; None without both outcomes."""
    pos = [v for v, r in pairs if r]
    neg = [v for v, r in pairs if not r]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def bins(pairs: list[tuple[float, bool]]) -> list[tuple[str, int, int]]:
    """(label, instances, resolved) per critic-value bin; the last bin includes 1.0."""
    out = []
    for i, (lo, hi) in enumerate(zip(BINS, BINS[1:], strict=False)):
        last = i == len(BINS) - 2
        inside = [r for v, r in pairs if lo <= v < hi or (last and v == hi)]
        out.append((f"{lo:.1f}-{hi:.1f}", len(inside), sum(inside)))
    return out
