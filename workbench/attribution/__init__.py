"""Attribution and drift statistics (issue 8): which configuration made users happier, and when it changed.

Pure functions over per-configuration aggregates (counts, sums, sums of squares, or PPI
estimates with standard errors), so the store only has to ``GROUP BY``.
"""

from workbench.attribution.compare import (
    DEFAULT_RATE_MIN_EFFECT,
    Comparison,
    ConfigResult,
    MetricKind,
    Verdict,
    compare,
)
from workbench.attribution.drift import (
    DEFAULT_ARL0,
    BernoulliCusum,
    CusumResult,
    WindowCheck,
    design_bernoulli_cusum,
    window_vs_baseline,
)
from workbench.attribution.inputs import InputDrift, input_drift, nearest_similarity, word_set
from workbench.attribution.power import (
    minimum_detectable_rate_difference,
    n_per_arm_means,
    n_per_arm_normal,
    n_per_arm_rates,
    power_means,
    power_rates,
)
from workbench.attribution.stats import (
    Alternative,
    DiffResult,
    EstimateAggregate,
    Interval,
    MeanAggregate,
    RateAggregate,
    adjust_pvalues,
    estimate_difference,
    holm,
    mean_difference,
    normal_interval,
    permutation_test,
    rate_difference,
    t_interval,
    wilson_interval,
)

__all__ = [
    "DEFAULT_ARL0",
    "DEFAULT_RATE_MIN_EFFECT",
    "Alternative",
    "BernoulliCusum",
    "Comparison",
    "ConfigResult",
    "CusumResult",
    "DiffResult",
    "EstimateAggregate",
    "InputDrift",
    "Interval",
    "MeanAggregate",
    "MetricKind",
    "RateAggregate",
    "Verdict",
    "WindowCheck",
    "adjust_pvalues",
    "compare",
    "design_bernoulli_cusum",
    "estimate_difference",
    "holm",
    "input_drift",
    "mean_difference",
    "minimum_detectable_rate_difference",
    "n_per_arm_means",
    "n_per_arm_normal",
    "n_per_arm_rates",
    "nearest_similarity",
    "normal_interval",
    "permutation_test",
    "power_means",
    "power_rates",
    "rate_difference",
    "t_interval",
    "wilson_interval",
    "window_vs_baseline",
    "word_set",
]
