"""The other side of bench/rfm.sh: the same RFM as `siyu rfm --orders FILE --format csv`,
computed by DuckDB and by Polars from the same CSV, and the check that all three agree.

    python rfm.py duckdb|polars ORDERS.csv AS_OF OUT.csv [WINDOW_DAYS]
        computes RFM (DESIGN.md, "Exact definitions") as of the day AS_OF, writes
        customer_id,recency_days,frequency,monetary,r,f,m,segment to OUT.csv sorted by
        customer id, and prints the seconds it took (reading the CSV through writing OUT.csv;
        the interpreter's start and the import of the library are not counted).
    python rfm.py siyu SIYU_BINARY ORDERS.csv AS_OF OUT.csv [WINDOW_DAYS]
        runs `siyu rfm --orders ORDERS.csv --as-of AS_OF --format csv > OUT.csv` and prints
        the seconds the whole process took, from its start to its exit.
    python rfm.py check A.csv B.csv ...
        checks that the files hold the same customers with the same R, F, M and class.

The times in the CSV are naive Asia/Shanghai times, so a row's local day is its date part.
Means are compared exactly, in integers: R is high when r * n < sum(r), F when f * n > sum(f),
M when m * n > sum(m) (m in fen); a value equal to the mean is low.
"""

import sys
import time
from datetime import date, timedelta

CLASSES = {
    "HHH": "important_value",
    "HLH": "important_development",
    "LHH": "important_retention",
    "LLH": "important_winback",
    "HHL": "general_value",
    "HLL": "general_development",
    "LHL": "general_retention",
    "LLL": "general_winback",
}


def run_duckdb(orders, as_of, out, window):
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    lower = (
        f"AND d > DATE '{as_of}' - INTERVAL {int(window)} DAY" if window else ""
    )
    segment = " ".join(
        f"WHEN '{k}' THEN '{v}'" for k, v in CLASSES.items()
    )
    con.execute(
        f"""
        COPY (
          WITH orders AS (
            SELECT customer_id, CAST(ordered_at AS DATE) AS d,
                   CAST(round(amount * 100) AS BIGINT) AS fen, status
            FROM read_csv('{orders}', header = true, columns = {{
              'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'ordered_at': 'TIMESTAMP',
              'amount': 'DECIMAL(18,2)', 'discount': 'DECIMAL(18,2)', 'coupon_code': 'VARCHAR',
              'channel': 'VARCHAR', 'status': 'VARCHAR'}})
          ),
          tallies AS (
            SELECT customer_id, DATE '{as_of}' - max(d) AS recency_days,
                   count(*) AS frequency, sum(fen) AS fen
            FROM orders
            WHERE (status = 'paid' OR status IS NULL) AND d <= DATE '{as_of}' {lower}
            GROUP BY customer_id
          ),
          means AS (
            SELECT count(*) AS n, sum(recency_days) AS sr, sum(frequency) AS sf,
                   sum(fen) AS sm
            FROM tallies
          ),
          levels AS (
            SELECT customer_id, recency_days, frequency, fen,
                   CASE WHEN recency_days * n < sr THEN 'H' ELSE 'L' END AS r,
                   CASE WHEN frequency * n > sf THEN 'H' ELSE 'L' END AS f,
                   CASE WHEN CAST(fen AS HUGEINT) * n > sm THEN 'H' ELSE 'L' END AS m
            FROM tallies, means
          )
          SELECT customer_id, recency_days, frequency,
                 CAST(fen AS DECIMAL(38, 0)) / 100 AS monetary, r, f, m,
                 CASE r || f || m {segment} END AS segment
          FROM levels ORDER BY customer_id
        ) TO '{out}' (HEADER, DELIMITER ',')
        """
    )
    return time.perf_counter() - started


def run_polars(orders, as_of, out, window):
    import polars as pl

    started = time.perf_counter()
    day = date.fromisoformat(as_of)
    schema = {
        "order_id": pl.String,
        "customer_id": pl.String,
        "ordered_at": pl.Datetime("us"),
        "amount": pl.Float64,
        "discount": pl.Float64,
        "coupon_code": pl.String,
        "channel": pl.String,
        "status": pl.String,
    }
    q = (
        pl.scan_csv(orders, schema=schema)
        .select(
            pl.col("customer_id"),
            pl.col("ordered_at").dt.date().alias("d"),
            (pl.col("amount") * 100).round().cast(pl.Int64).alias("fen"),
            pl.col("status"),
        )
        .filter(
            ((pl.col("status") == "paid") | pl.col("status").is_null())
            & (pl.col("d") <= day)
        )
    )
    if window:
        q = q.filter(pl.col("d") > day - timedelta(days=int(window)))
    t = (
        q.group_by("customer_id")
        .agg(
            pl.col("d").max().alias("last"),
            pl.len().alias("frequency"),
            pl.col("fen").sum().alias("fen"),
        )
        .with_columns(
            (pl.lit(day) - pl.col("last")).dt.total_days().alias("recency_days")
        )
        .with_columns(
            pl.len().alias("n"),
            pl.col("recency_days").sum().alias("sr"),
            pl.col("frequency").sum().alias("sf"),
            pl.col("fen").sum().alias("sm"),
        )
        .with_columns(
            pl.when(pl.col("recency_days") * pl.col("n") < pl.col("sr"))
            .then(pl.lit("H"))
            .otherwise(pl.lit("L"))
            .alias("r"),
            pl.when(pl.col("frequency") * pl.col("n") > pl.col("sf"))
            .then(pl.lit("H"))
            .otherwise(pl.lit("L"))
            .alias("f"),
            pl.when(
                pl.col("fen").cast(pl.Int128) * pl.col("n") > pl.col("sm")
            )
            .then(pl.lit("H"))
            .otherwise(pl.lit("L"))
            .alias("m"),
        )
        .with_columns(
            (pl.col("r") + pl.col("f") + pl.col("m"))
            .replace_strict(CLASSES)
            .alias("segment"),
            (
                (pl.col("fen") // 100).cast(pl.String)
                + "."
                + (pl.col("fen") % 100).cast(pl.String).str.zfill(2)
            ).alias("monetary"),
        )
        .select(
            "customer_id",
            "recency_days",
            "frequency",
            "monetary",
            "r",
            "f",
            "m",
            "segment",
        )
        .sort("customer_id")
    )
    t.sink_csv(out)
    return time.perf_counter() - started


def run_siyu(binary, orders, as_of, out, window):
    import subprocess

    args = [binary, "rfm", "--orders", orders, "--as-of", as_of, "--format", "csv"]
    if window:
        args += ["--window-days", str(int(window))]
    with open(out, "wb") as f:
        started = time.perf_counter()
        subprocess.run(args, stdout=f, check=True)
        return time.perf_counter() - started


def fen(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def load(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        want = ["customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment"]
        if header != want:
            raise SystemExit(f"{path}: header {header}, expected {want}")
        for line in f:
            c, r, fr, m, lr, lf, lm, seg = line.rstrip("\n").split(",")
            rows[c] = (int(r), int(fr), fen(m), lr + lf + lm, seg)
    return rows


def check(paths):
    first = load(paths[0])
    for other in paths[1:]:
        rows = load(other)
        if rows.keys() != first.keys():
            only = sorted(rows.keys() ^ first.keys())[:5]
            raise SystemExit(
                f"{paths[0]} and {other} score different customers "
                f"({len(first)} and {len(rows)}; e.g. {only})"
            )
        bad = [c for c in first if first[c] != rows[c]]
        if bad:
            c = bad[0]
            raise SystemExit(
                f"{paths[0]} and {other} differ on {len(bad)} customers, "
                f"e.g. {c}: {first[c]} vs {rows[c]}"
            )
    print(f"all {len(paths)} agree on every one of {len(first):,} customers (R, F, M, class)")


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        check(argv[2:])
        return
    if len(argv) >= 2 and argv[1] == "siyu":
        if len(argv) not in (6, 7):
            raise SystemExit(__doc__)
        window = argv[6] if len(argv) == 7 else None
        print(f"{run_siyu(argv[2], argv[3], argv[4], argv[5], window):.3f}")
        return
    if len(argv) not in (5, 6) or argv[1] not in ("duckdb", "polars"):
        raise SystemExit(__doc__)
    tool, orders, as_of, out = argv[1:5]
    window = argv[5] if len(argv) == 6 else None
    run = run_duckdb if tool == "duckdb" else run_polars
    print(f"{run(orders, as_of, out, window):.3f}")


if __name__ == "__main__":
    main(sys.argv)
