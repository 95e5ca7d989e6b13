#!/usr/bin/env bash
# Issue 19's workbook figure: a PDD-shaped order-details workbook of N rows (default
# 100,000), written by openpyxl (installed into a scratch virtualenv), imported into a
# fresh SQLite file by the given siyu binary under /usr/bin/time.
#
#     bench/xlsx.sh target/release/siyu [ROWS]
set -euo pipefail
siyu=$(realpath "$1"); rows=${2:-100000}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
python3 -m venv "$dir/venv" >/dev/null
"$dir/venv/bin/pip" install -q openpyxl
"$dir/venv/bin/python" - "$dir/pdd.xlsx" "$rows" <<'PY'
import datetime, random, sys
import openpyxl
path, rows = sys.argv[1], int(sys.argv[2])
wb = openpyxl.Workbook(write_only=True)
ws = wb.create_sheet("订单明细")
ws.append("商品,订单号,订单状态,商品总价(元),店铺优惠折扣(元),平台优惠折扣(元),多多支付立减金额(元),"
          "邮费(元),用户实付金额(元),商家实收金额(元),商品数量(件),订单成交时间,支付时间,拼单成功时间,"
          "发货时间,确认收货时间,商品id,商品规格,样式ID,商家编码-SKU维度,商家编码-商品维度,商家备注,"
          "售后状态,快递单号,快递公司,收货人,手机".split(","))
rng = random.Random(1)
start = datetime.datetime(2024, 1, 1)
for i in range(rows):
    at = start + datetime.timedelta(seconds=rng.randrange(2 * 365 * 86400))
    paid = round(rng.lognormvariate(4.5, 0.6), 2)
    ws.append(["明前龙井", f"240101-{100000000000 + i}", rng.choice(["已签收", "待发货", "已发货，待签收"]),
               paid, 0, 0, 0, 0, paid, paid, 1, at, at, at, None, None, "123456789", "默认", None,
               None, None, None, "无售后或售后取消", None, None, "王五",
               str(13000000000 + rng.randrange(rows // 10))])
wb.save(path)
PY
ls -l "$dir/pdd.xlsx"
/usr/bin/time -f "%e s, %M KiB peak" "$siyu" import orders "$dir/pdd.xlsx" --db "$dir/x.db"
