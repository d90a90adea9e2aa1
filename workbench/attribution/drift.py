"""Drift detectors: a Bernoulli CUSUM with a settable false-alarm rate and a window-vs-baseline test
(input drift lives in ``inputs``).

Choosing the CUSUM threshold h. The chart adds the log-likelihood ratio of "rate is p1" against
"rate is p0" per observation and alarms when the running sum S (reset at 0) reaches h. Lorden's
bound ARL0 >= e^h makes h = ln(ARL0) a safe but loose choice. Instead, like Reynolds & Stoumbos
(1999), the increments are scaled to integers (``unit`` LLR units per step), so the chart is a
finite Markov chain on 0..H-1 and its run-length distribution is *exact* (Brook & Evans 1972):
ARL = (I - Q)^-1 1, P(alarm within N) = 1 - e0' Q^N 1. ``design_bernoulli_cusum`` picks the
smallest integer H whose in-control ARL (or false-alarm probability within a horizon) meets the
target, and the chart that runs is exactly the chart that was calibrated. The simulation tests
check these numbers against Monte Carlo.

Window counts (``run_counts``) only apply the reset at window ends; its S at a window end is at
most the per-observation S, so it alarms no earlier: false-alarm rates are at most the designed
ones, and delays grow by up to a window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from workbench.attribution.stats import (
    DiffResult,
    EstimateAggregate,
    Interval,
    MeanAggregate,
    RateAggregate,
    estimate_difference,
    mean_difference,
    normal_interval,
    rate_difference,
    rate_interval,
    t_interval,
)
from workbench.errors import StatisticsError, ValidationError

__all__ = [
    "DEFAULT_ARL0",
    "BernoulliCusum",
    "CusumResult",
    "WindowCheck",
    "design_bernoulli_cusum",
    "window_vs_baseline",
]

DEFAULT_ARL0 = 10_000  # in-control observations between false alarms, on average
_MAX_STATES = 20_000


@dataclass(frozen=True)
class CusumResult:
    alarmed: bool
    alarm_at: int | None  # index (observation or window) at which S first reached h
    change_at: int | None  # estimated first changed index: just after S last left 0
    statistic: float  # S at the alarm (or at the end), in log-likelihood-ratio units
    threshold: float  # h, same units
    n: int  # observations (or windows) examined
    before: RateAggregate  # counts before change_at
    after: RateAggregate  # counts from change_at to the alarm (or the end)
    unit: Literal["observation", "window"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["before"], d["after"] = self.before.to_dict(), self.after.to_dict()
        for k in ("before", "after"):
            agg = getattr(self, k)
            d[k]["rate"] = agg.successes / agg.n if agg.n else None
        return d


@dataclass(frozen=True)
class BernoulliCusum:
    """One-sided CUSUM for a rate moving from ``p0`` to ``p1`` (a drop if p1 < p0), integer-scaled."""

    p0: float
    p1: float
    unit: float
    step_success: int
    step_failure: int
    threshold: int

    @property
    def h(self) -> float:
        return self.threshold * self.unit

    @cached_property
    def _moves(self) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(self.threshold)
        return np.maximum(0, i + self.step_success), np.maximum(0, i + self.step_failure)

    def _check_p(self, p: float | None) -> float:
        p = self.p0 if p is None else p
        if not 0 < p < 1:
            raise ValidationError(f"true rate must be in (0, 1), got {p!r}")
        return p

    def _q(self, p: float) -> sparse.csr_matrix:
        """Transition matrix among the non-alarm states 0..H-1 (rows: from, columns: to)."""
        h = self.threshold
        js, jf = self._moves
        ms, mf = js < h, jf < h
        rows = np.concatenate([np.arange(h)[ms], np.arange(h)[mf]])
        vals = np.concatenate([np.full(int(ms.sum()), p), np.full(int(mf.sum()), 1 - p)])
        return sparse.csr_matrix((vals, (rows, np.concatenate([js[ms], jf[mf]]))), shape=(h, h))

    def _arl_vector(self, p: float) -> np.ndarray:
        a = sparse.identity(self.threshold, format="csc") - self._q(p).tocsc()
        return np.atleast_1d(spsolve(a, np.ones(self.threshold)))

    def _propagate(self, steps: int, p: float) -> tuple[np.ndarray, float]:
        """(distribution of S after ``steps`` given no alarm, log P(no alarm in ``steps``)).

        Once the conditional distribution stops changing (the chain reached its quasi-stationary
        law) every further step multiplies survival by the same factor, so long horizons cost
        no more than a few hundred steps.
        """
        d = np.zeros(self.threshold)
        d[0] = 1.0
        log_surv = 0.0
        qt = self._q(p).T.tocsr()
        for t in range(steps):
            nxt = qt @ d
            mass = float(nxt.sum())
            if mass <= 0:
                return d, -math.inf
            nxt /= mass
            log_surv += math.log(mass)
            if np.abs(nxt - d).sum() < 1e-13:
                return nxt, log_surv + (steps - t - 1) * math.log(mass)
            d = nxt
        return d, log_surv

    def arl(self, p: float | None = None) -> float:
        """Average run length from S=0 when the true rate is ``p`` (default p0: the in-control ARL)."""
        return float(self._arl_vector(self._check_p(p))[0])

    def false_alarm_probability(self, horizon: int) -> float:
        """Exact P(alarm within ``horizon`` in-control observations)."""
        if horizon < 0:
            raise ValidationError(f"horizon must be >= 0, got {horizon}")
        return float(-math.expm1(self._propagate(horizon, self.p0)[1]))

    def expected_delay(self, change_at: int, p: float | None = None) -> float:
        """Expected observations from a change at index ``change_at`` to the alarm (alarm included),
        given no false alarm before it; true rate after the change ``p`` (default p1)."""
        p = self._check_p(self.p1 if p is None else p)
        d, log_surv = self._propagate(change_at, self.p0)
        if log_surv == -math.inf:
            raise StatisticsError("a false alarm before the change is certain; no delay to compute")
        return float(d @ self._arl_vector(p))

    def _result(self, inc: np.ndarray, succ: np.ndarray, tot: np.ndarray, unit: str) -> CusumResult:
        c = np.concatenate([[0], np.cumsum(inc)])
        s = c - np.minimum.accumulate(c)
        hits = np.flatnonzero(s[1:] >= self.threshold)
        end = int(hits[0]) + 1 if hits.size else len(inc)
        start = int(np.flatnonzero(s[: end + 1] == 0)[-1])
        cs, ct = np.concatenate([[0], np.cumsum(succ)]), np.concatenate([[0], np.cumsum(tot)])
        before = RateAggregate(int(ct[start]), int(cs[start]))
        after = RateAggregate(int(ct[end] - ct[start]), int(cs[end] - cs[start]))
        return CusumResult(
            bool(hits.size),
            int(hits[0]) if hits.size else None,
            start if (hits.size or s[end] > 0) else None,
            float(s[end] * self.unit),
            self.h,
            len(inc),
            before,
            after,
            unit,
        )  # type: ignore[arg-type]

    def run(self, outcomes: Sequence[bool | int] | np.ndarray) -> CusumResult:
        """Run over a time-ordered stream of 0/1 outcomes (1 = success, e.g. thumbs up)."""
        x = np.asarray(outcomes)
        if x.size == 0:
            raise StatisticsError("CUSUM needs at least one observation, got an empty stream")
        if not np.isin(x, (0, 1)).all():
            raise ValidationError("CUSUM outcomes must be 0/1 or booleans")
        x = x.astype(np.int64)
        inc = np.where(x == 1, self.step_success, self.step_failure).astype(np.int64)
        return self._result(inc, x, np.ones_like(x), "observation")

    def run_counts(self, successes: Sequence[int] | np.ndarray, trials: Sequence[int] | np.ndarray) -> CusumResult:
        """Run over time-ordered windows given as (successes, trials) counts, e.g. from SQL buckets."""
        k, n = np.asarray(successes, dtype=np.int64), np.asarray(trials, dtype=np.int64)
        if k.shape != n.shape or k.ndim != 1:
            raise ValidationError("successes and trials must be flat sequences of the same length")
        if k.size == 0:
            raise StatisticsError("CUSUM needs at least one window, got none")
        if (n < 0).any() or (k < 0).any() or (k > n).any():
            raise ValidationError("each window needs 0 <= successes <= trials")
        inc = k * self.step_success + (n - k) * self.step_failure
        return self._result(inc, k, n, "window")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "h": self.h}


def _llr_steps(p0: float, p1: float) -> tuple[float, float]:
    return math.log(p1 / p0), math.log((1 - p1) / (1 - p0))


def design_bernoulli_cusum(
    p0: float,
    p1: float,
    arl0: float | None = None,
    false_alarm_prob: float | None = None,
    horizon: int | None = None,
    resolution: int = 20,
) -> BernoulliCusum:
    """Build a CUSUM for a change from rate ``p0`` to ``p1`` with a chosen false-alarm rate.

    Give either ``arl0`` (mean in-control observations between false alarms; default
    ``DEFAULT_ARL0``) or ``false_alarm_prob`` with ``horizon`` (P(any false alarm within horizon
    observations)). ``resolution``: integer steps for the smaller LLR increment; higher is closer
    to the exact LLR chart but has more Markov states.
    """
    for name, v in (("p0", p0), ("p1", p1)):
        if not 0 < v < 1:
            raise ValidationError(f"{name} must be in (0, 1), got {v!r}")
    if p0 == p1:
        raise ValidationError("p1 must differ from p0: it is the shifted rate to detect")
    if (false_alarm_prob is None) != (horizon is None):
        raise ValidationError("give false_alarm_prob together with horizon")
    if false_alarm_prob is not None and arl0 is not None:
        raise ValidationError("give either arl0 or false_alarm_prob/horizon, not both")
    if false_alarm_prob is not None:
        if not 0 < false_alarm_prob < 1 or horizon is None or horizon < 1:
            raise ValidationError(
                f"false_alarm_prob must be in (0, 1) and horizon >= 1, got {false_alarm_prob!r}, {horizon!r}"
            )
    else:
        arl0 = DEFAULT_ARL0 if arl0 is None else arl0
        if not arl0 > 1:
            raise ValidationError(f"arl0 must be > 1 observation, got {arl0!r}")
    if resolution < 1:
        raise ValidationError(f"resolution must be >= 1, got {resolution}")

    vs, vf = _llr_steps(p0, p1)
    target_h = math.log(arl0 if arl0 else horizon / false_alarm_prob)  # type: ignore[operator]
    unit = max(min(abs(vs), abs(vf)) / resolution, 2.5 * (target_h + 2) / _MAX_STATES)  # bounds the states
    ss = int(math.copysign(max(1, round(abs(vs) / unit)), vs))
    sf = int(math.copysign(max(1, round(abs(vf) / unit)), vf))

    def chart(h: int) -> BernoulliCusum:
        return BernoulliCusum(p0, p1, unit, ss, sf, h)

    # Lorden's e^h bound puts the ARL answer near ln(ARL0)/unit; the horizon answer is near the
    # chart with ARL0 = horizon / -ln(1 - prob) (run lengths are roughly geometric).
    arl_target = arl0 if arl0 is not None else horizon / -math.log1p(-false_alarm_prob)  # type: ignore[operator]
    h = _smallest_threshold(lambda h: chart(h).arl() >= arl_target, math.ceil(math.log(arl_target) / unit))
    if false_alarm_prob is not None:
        h = _smallest_threshold(lambda h: chart(h).false_alarm_probability(horizon) <= false_alarm_prob, h)
    return chart(h)


def _smallest_threshold(meets: Callable[[int], bool], guess: int) -> int:
    """Smallest integer H >= 1 with ``meets(H)`` (monotone in H), searching outward from ``guess``."""
    guess = max(1, guess)
    step = max(1, guess // 64)
    if meets(guess):
        hi, lo = guess, guess - step
        while lo >= 1 and meets(lo):
            hi, step = lo, step * 2
            lo = hi - step
        lo = max(lo, 0)
    else:
        lo, hi = guess, guess + step
        while not meets(hi):
            lo, step = hi, step * 2
            hi = lo + step
            if hi > 4 * _MAX_STATES:
                raise StatisticsError("cannot reach the requested false-alarm rate with a bounded chart")
    while hi - lo > 1:  # invariant: meets(hi), not meets(lo) (0 counts as not meeting)
        mid = (lo + hi) // 2
        hi, lo = (mid, lo) if meets(mid) else (hi, mid)
    return hi


@dataclass(frozen=True)
class WindowCheck:
    """Recent window vs baseline period; ``significant`` means a change in ``direction`` at alpha."""

    significant: bool
    direction: str
    alpha: float
    window_n: int
    baseline_n: int
    window_value: float
    window_ci: Interval | None
    baseline_value: float
    baseline_ci: Interval | None
    difference: DiffResult
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["window_ci"] = self.window_ci.to_dict() if self.window_ci else None
        d["baseline_ci"] = self.baseline_ci.to_dict() if self.baseline_ci else None
        d["difference"] = self.difference.to_dict()
        return d


_DIRECTIONS = {"decrease": "less", "increase": "greater", "either": "two-sided"}


def window_vs_baseline(
    window: RateAggregate | MeanAggregate | EstimateAggregate,
    baseline: RateAggregate | MeanAggregate | EstimateAggregate,
    alpha: float = 0.01,
    direction: str = "decrease",
) -> WindowCheck:
    """One test per watch run: is the recent window worse than the baseline period?

    Rates: one-sided two-proportion z test (Fisher exact for small counts); means: Welch.
    ``alpha`` is the false-alarm probability per check when nothing changed.
    """
    if direction not in _DIRECTIONS:
        raise ValidationError(f"direction must be one of {sorted(_DIRECTIONS)}, got {direction!r}")
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must be in (0, 1), got {alpha!r}")
    if type(window) is not type(baseline):
        raise ValidationError(
            f"window and baseline must be the same kind of aggregate, got "
            f"{type(window).__name__} and {type(baseline).__name__}"
        )
    if window.n == 0:
        raise StatisticsError("the recent window has no observations")
    if baseline.n == 0:
        raise StatisticsError("the baseline period has no observations")
    alt = _DIRECTIONS[direction]
    conf = 1 - alpha
    if isinstance(window, RateAggregate):
        assert isinstance(baseline, RateAggregate)
        diff = rate_difference(window, baseline, conf, alt)  # type: ignore[arg-type]
        wci, bci = rate_interval(window, conf), rate_interval(baseline, conf)  # cluster-robust if clustered
        fmt = lambda v: f"{v:.1%}"  # noqa: E731
    elif isinstance(window, MeanAggregate):
        assert isinstance(baseline, MeanAggregate)
        diff = mean_difference(window, baseline, conf, alt)  # type: ignore[arg-type]
        wci, bci = t_interval(window, conf), t_interval(baseline, conf)
        fmt = lambda v: f"{v:.3g}"  # noqa: E731
    else:
        assert isinstance(baseline, EstimateAggregate)
        diff = estimate_difference(window, baseline, conf, alt)  # type: ignore[arg-type]
        wci, bci = (
            normal_interval(window.estimate, window.se, conf),
            normal_interval(baseline.estimate, baseline.se, conf),
        )
        fmt = lambda v: f"{v:.3g}"  # noqa: E731
    sig = diff.p_value < alpha
    what = {"decrease": "dropped", "increase": "rose", "either": "changed"}[direction]
    msg = (
        f"{'ALERT: ' if sig else ''}recent {fmt(window.value)} (n={window.n}) vs baseline "
        f"{fmt(baseline.value)} (n={baseline.n}): {'' if sig else 'not '}{what} significantly "
        f"(p={diff.p_value:.3g}, alpha={alpha:g})"
    )
    return WindowCheck(
        sig, direction, alpha, int(window.n), int(baseline.n), window.value, wci, baseline.value, bci, diff, msg
    )
