//! Weimob (微盟) orders as its order-list API returns them: pages of
//! `{data: {pageList: [{orderInfo: {…}}]}}`, one JSON value per line or one value. Weimob
//! has no CSV export to speak of; merchants (or their integrators) save the API's pages.
//!
//! Each order: `orderBaseInfo.orderNo`, `createTime` (milliseconds since the epoch) and
//! `orderStatus` (0–3 not paid yet: left out and counted; 4 partly shipped, 5 shipped,
//! 7 received, 8 completed: paid; 9 cancelled: refunded), the buyer's unmasked phone as
//! the key (else their nickname), and what was paid as the items' `salePrice` × `skuNum`.
//! The receiver's identity document (`certificateInfo`) is never read. The orders are
//! checked whole, then written through the import path.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use siyu_core::customer::normalise_phone;
use siyu_core::import::Kind;
use siyu_core::money::Money;
use siyu_store::{Store, Tenant};

use super::import::{ImportOptions, ImportReport, import_file};
use super::wecom::{JsonRejects, for_each_value};

#[derive(Debug, Serialize)]
pub struct WeimobReport {
    pub file: PathBuf,
    /// Orders not paid yet (status 0–3), left out.
    pub unpaid: u64,
    pub orders: ImportReport,
}

impl std::fmt::Display for WeimobReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.orders)?;
        if self.unpaid > 0 {
            write!(f, "; {} orders not paid yet left out", self.unpaid)?;
        }
        Ok(())
    }
}

/// Whether a JSON value looks like a page of Weimob's order list.
pub fn is_weimob_page(value: &Value) -> bool {
    value.pointer("/data/pageList").is_some_and(Value::is_array)
}

/// One order as a canonical orders row, `None` for one not paid yet.
fn order_row(order: &Value) -> Result<Option<[String; 5]>, String> {
    let info = order.get("orderInfo").unwrap_or(order);
    let base = info
        .get("orderBaseInfo")
        .ok_or("orderInfo.orderBaseInfo: is missing")?;
    let number = match base.get("orderNo") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => return Err("orderBaseInfo.orderNo: is missing".into()),
    };
    let status = match base.get("orderStatus").and_then(Value::as_i64) {
        Some(0..=3) => return Ok(None),
        Some(4 | 5 | 7 | 8) => "paid",
        Some(9) => "refunded",
        Some(other) => {
            return Err(format!(
                "order {number}: orderStatus {other} is not one Weimob documents (0-5, 7-9)"
            ));
        }
        None => return Err(format!("order {number}: orderStatus: is missing")),
    };
    let created = base
        .get("createTime")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            format!("order {number}: createTime: is not milliseconds since the epoch")
        })?;
    let buyer = info.get("buyerInfo");
    let text = |path: &str| {
        buyer
            .and_then(|b| b.pointer(path))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty() && !siyu_core::import::is_placeholder(s))
    };
    let customer = text("/buyerExtInfo/buyerPhone")
        .or_else(|| text("/phone"))
        .and_then(normalise_phone)
        .or_else(|| text("/userNickName").map(str::to_owned))
        .ok_or_else(|| format!("order {number}: no buyer key (phone or nickname)"))?;
    let mut fen: i64 = 0;
    for (i, item) in info
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let price = match item.get("salePrice") {
            Some(Value::Number(n)) => Money::parse_yuan(&n.to_string()),
            Some(Value::String(s)) => Money::parse_yuan(s),
            _ => return Err(format!("order {number}: items[{i}].salePrice: is missing")),
        }
        .map_err(|e| format!("order {number}: items[{i}].salePrice: {e}"))?;
        let count = item.get("skuNum").and_then(Value::as_i64).unwrap_or(1);
        if !(1..=100_000).contains(&count) {
            return Err(format!(
                "order {number}: items[{i}].skuNum: {count} is out of range"
            ));
        }
        fen = fen
            .checked_add(price.fen().saturating_mul(count))
            .ok_or_else(|| format!("order {number}: its items sum past the limit"))?;
    }
    let amount = Money::from_fen(fen);
    Ok(Some([
        number,
        customer,
        created.to_string(),
        format!("{}.{:02}", amount.fen() / 100, amount.fen() % 100),
        status.to_owned(),
    ]))
}

/// Imports a file of Weimob order-list pages.
pub fn import_orders(
    store: &mut dyn Store,
    tenant: &Tenant,
    path: &Path,
    options: ImportOptions,
) -> anyhow::Result<WeimobReport> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let rows_path = dir.path().join("weimob.orders.csv");
    let mut rows = csv::Writer::from_path(&rows_path)?;
    rows.write_record([
        "order_id",
        "customer_id",
        "ordered_at",
        "amount",
        "status",
        "channel",
    ])?;
    let (mut unpaid, mut rejects) = (0u64, JsonRejects::new(path));
    for_each_value(path, &mut |line, value| {
        if !is_weimob_page(&value) {
            rejects.push(
                line,
                "not a page of Weimob's order list (data.pageList)".to_owned(),
                &value,
            );
            return Ok(());
        }
        for order in value
            .pointer("/data/pageList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match order_row(order) {
                Ok(Some(row)) => {
                    let [a, b, c, d, e] = row;
                    rows.write_record([a, b, c, d, e, "weimob".to_owned()])?;
                }
                Ok(None) => unpaid += 1,
                Err(reason) => rejects.push(line, reason, order),
            }
        }
        Ok(())
    })?;
    rows.flush()?;
    rejects.refuse_unless(options.skip_invalid, "orders")?;
    let options = ImportOptions {
        skip_invalid: false,
        ..options
    };
    let mut orders = import_file(store, tenant, Kind::Orders, &rows_path, options)
        .context("writing the orders")?;
    orders.file = path.to_owned();
    orders.rejected = rejects.len();
    orders.rejects_file = rejects.write()?;
    orders.preset = Some("weimob");
    orders.encoding = "JSON";
    Ok(WeimobReport {
        file: path.to_owned(),
        unpaid,
        orders,
    })
}
