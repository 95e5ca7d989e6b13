"""Reference values for the campaign results' intervals (crates/core/src/campaign/tests.rs),
computed independently with scipy: the difference of two proportions (Wald, unpooled) and
Welch's t interval for revenue per customer. Run: python3 bench/campaign_reference.py
(needs scipy: python3 -m venv /tmp/scipyenv && /tmp/scipyenv/bin/pip install scipy)."""

import math

from scipy import stats

# Conversion: 120 of 900 treated bought, 8 of 100 held out.
x1, n1, x0, n0 = 120, 900, 8, 100
p1, p0 = x1 / n1, x0 / n0
z = stats.norm.ppf(0.975)
se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
d = p1 - p0
print(f"const PROP_DIFF: f64 = {d!r};")
print(f"const PROP_LOW: f64 = {float(d - z * se)!r};")
print(f"const PROP_HIGH: f64 = {float(d + z * se)!r};")

# Revenue per customer, in fen.
treated = [i * 37 % 500 for i in range(60)]
holdout = [i * 53 % 300 for i in range(25)]
res = stats.ttest_ind(treated, holdout, equal_var=False)
ci = res.confidence_interval(0.95)
print(f"const WELCH_DIFF: f64 = {sum(treated) / len(treated) - sum(holdout) / len(holdout)!r};")
print(f"const WELCH_LOW: f64 = {float(ci.low)!r};")
print(f"const WELCH_HIGH: f64 = {float(ci.high)!r};")
print(f"const T_975_3_5: f64 = {float(stats.t.ppf(0.975, 3.5))!r};")
print(f"const T_975_1000: f64 = {float(stats.t.ppf(0.975, 1000.0))!r};")
