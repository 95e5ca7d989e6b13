"""The other side of bench/clv.sh: the BG/NBD and Gamma-Gamma fits of Python's `lifetimes`
on the calibration summary siyu wrote, and the check that siyu's estimates agree.

    python clv.py siyu OUT.json SIYU_BINARY ARGS...
        runs `SIYU_BINARY ARGS...` (a `clv fit --format json`), writes its output to
        OUT.json and prints the seconds the whole process took, from its start to its exit.
    python clv.py lifetimes SUMMARY.csv OUT.json
        reads the summary (customer_id,frequency,recency,T,monetary_value) with pandas, fits
        BetaGeoFitter on every customer and GammaGammaFitter on those with frequency > 0
        and monetary_value > 0 (both with their defaults: penalizer 0, tol 1e-7), writes
        the estimates as siyu's JSON and prints the seconds from reading the CSV to the
        second fit (the interpreter's start and the imports are not counted).
    python clv.py check SUMMARY.csv LIFETIMES.json SIYU.json...
        checks that every parameter of every SIYU.json agrees with lifetimes' to 1e-4
        relative, and so do the log-likelihoods: siyu's BG/NBD log-likelihood against the
        one of lifetimes' estimate, and the Gamma-Gamma log-likelihood of both estimates
        (lifetimes' own figure is a mean over time rescaled to max T = 1, so both are
        computed here with its likelihood function on the summary as it is, in weeks).
    python clv.py versions
        prints the versions of lifetimes, numpy, pandas, scipy and autograd.
"""

import json
import subprocess
import sys
import time

TOLERANCE = 1e-4


def run_siyu(out, binary, args):
    started = time.perf_counter()
    done = subprocess.run([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode())
        sys.exit(f"siyu failed: {binary} {' '.join(args)}")
    with open(out, "wb") as f:
        f.write(done.stdout)
    print(f"{seconds:.4f}")


def run_lifetimes(summary, out):
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    started = time.perf_counter()
    d = pd.read_csv(summary, dtype={"customer_id": str})
    bgf = BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"])
    repeat = d[(d["frequency"] > 0) & (d["monetary_value"] > 0)]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    seconds = time.perf_counter() - started
    b, g = bgf.params_, ggf.params_
    result = {
        "bgnbd": {
            "r": float(b["r"]),
            "alpha": float(b["alpha"]),
            "a": float(b["a"]),
            "b": float(b["b"]),
            "log_likelihood": bgnbd_ll(d, [b["r"], b["alpha"], b["a"], b["b"]]),
            "customers": int(len(d)),
        },
        "gamma_gamma": {
            "p": float(g["p"]),
            "q": float(g["q"]),
            "v": float(g["v"]),
            "customers": int(len(repeat)),
        },
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{seconds:.4f}")


def bgnbd_ll(d, params):
    """The total BG/NBD log-likelihood by lifetimes' own function, time as in the summary."""
    import numpy as np
    from lifetimes import BetaGeoFitter

    f, r, t = (d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    w = np.ones_like(f)
    mean = BetaGeoFitter._negative_log_likelihood(np.log(np.asarray(params, dtype=float)), f, r, t, w, 0.0)
    return float(-mean * len(f))


def gamma_gamma_ll(d, params):
    import numpy as np
    from lifetimes import GammaGammaFitter

    repeat = d[(d["frequency"] > 0) & (d["monetary_value"] > 0)]
    f = repeat["frequency"].to_numpy(dtype=float)
    m = repeat["monetary_value"].to_numpy(dtype=float)
    w = np.ones_like(f)
    mean = GammaGammaFitter._negative_log_likelihood(np.log(np.asarray(params, dtype=float)), f, m, w, 0.0)
    return float(-mean * len(f))


def check(summary, reference, others):
    import pandas as pd

    d = pd.read_csv(summary, dtype={"customer_id": str})
    with open(reference) as f:
        want = json.load(f)
    gg_want = [want["gamma_gamma"][k] for k in ("p", "q", "v")]
    ll_gg_want = gamma_gamma_ll(d, gg_want)
    worst = 0.0
    failed = []
    for path in others:
        with open(path) as f:
            got = json.load(f)
        rows = []
        for model, names in (("bgnbd", ("r", "alpha", "a", "b", "log_likelihood")), ("gamma_gamma", ("p", "q", "v"))):
            for k in names:
                rows.append((f"{model}.{k}", got[model][k], want[model][k]))
            rows.append((f"{model}.customers", got[model]["customers"], want[model]["customers"]))
        gg_got = [got["gamma_gamma"][k] for k in ("p", "q", "v")]
        rows.append(("gamma_gamma.log_likelihood", gamma_gamma_ll(d, gg_got), ll_gg_want))
        for name, g, w in rows:
            rel = abs(g - w) / abs(w) if w != 0 else abs(g)
            worst = max(worst, rel)
            if not rel <= TOLERANCE:
                failed.append(f"{path}: {name} = {g!r}, lifetimes {w!r} (relative difference {rel:.2e})")
    if failed:
        sys.exit("estimates disagree:\n  " + "\n  ".join(failed))
    print(f"{worst:.2e}")


def versions():
    import importlib.metadata as md

    print(", ".join(f"{p} {md.version(p)}" for p in ("lifetimes", "numpy", "pandas", "scipy", "autograd")))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "siyu":
        run_siyu(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == "lifetimes":
        run_lifetimes(sys.argv[2], sys.argv[3])
    elif mode == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif mode == "versions":
        versions()
    else:
        sys.exit(__doc__)
