//! An order: a purchase. Money in fen; refunded orders count nowhere in F, M or GMV.

use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::ids::{CustomerId, OrderId};
use crate::money::Money;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Paid,
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("'{0}' is not an order status (paid or refunded)")]
    Unknown(String),
    #[error("'{0}' is an order not paid yet, which is no sale: leave it out (or --skip-invalid)")]
    Unpaid(String),
}

/// The words shop exports write for orders that are paid for: paid, shipped, received,
/// completed, and after-sales cases still open (the order counts until it is refunded).
const PAID_WORDS: &[&str] = &[
    "paid",
    "completed",
    "shipped",
    "已付款",
    "已支付",
    "买家已付款",
    "买家已付款，等待卖家发货",
    "买家已付款,等待卖家发货",
    "等待卖家发货",
    "待发货",
    "部分发货",
    "已发货",
    "卖家已发货",
    "卖家已发货，等待买家确认",
    "卖家已发货,等待买家确认",
    "等待买家确认",
    "待收货",
    "已收货",
    "已签收",
    "已发货，待签收",
    "已发货,待签收",
    "待评价",
    "交易成功",
    "交易完成",
    "已完成",
    "已成交",
    "售后中",
    "退款中",
];

/// Orders that came to nothing: refunded, or closed or cancelled after payment (they
/// count nowhere, as refunded ones).
const REFUNDED_WORDS: &[&str] = &[
    "refunded",
    "cancelled",
    "canceled",
    "closed",
    "退款",
    "已退款",
    "退款成功",
    "退款完成",
    "全额退款",
    "已全额退款",
    "未发货，退款成功",
    "已发货，退款成功",
    "已签收，退款成功",
    "交易关闭",
    "已关闭",
    "订单关闭",
    "已取消",
    "取消",
    "订单取消",
];

/// Orders not paid yet: no sale.
const UNPAID_WORDS: &[&str] = &[
    "unpaid",
    "pending",
    "待付款",
    "待支付",
    "等待买家付款",
    "未付款",
    "未支付",
];

/// Every status word siyu reads (for the documentation's check).
pub fn status_words() -> impl Iterator<Item = &'static str> {
    PAID_WORDS
        .iter()
        .chain(REFUNDED_WORDS)
        .chain(UNPAID_WORDS)
        .copied()
}

impl OrderStatus {
    /// `paid` when empty; the words of the common exports are understood too (see
    /// docs/import.md).
    pub fn parse(text: &str) -> Result<OrderStatus, StatusError> {
        match text.trim() {
            "" | "paid" => return Ok(OrderStatus::Paid),
            "refunded" => return Ok(OrderStatus::Refunded),
            _ => {}
        }
        let word = text.trim().to_lowercase();
        let word = word.as_str();
        if PAID_WORDS.contains(&word) {
            Ok(OrderStatus::Paid)
        } else if REFUNDED_WORDS.contains(&word) {
            Ok(OrderStatus::Refunded)
        } else if UNPAID_WORDS.contains(&word) {
            Err(StatusError::Unpaid(text.trim().to_owned()))
        } else {
            Err(StatusError::Unknown(text.trim().to_owned()))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn from_stored(text: &str) -> Option<OrderStatus> {
        match text {
            "paid" => Some(OrderStatus::Paid),
            "refunded" => Some(OrderStatus::Refunded),
            _ => None,
        }
    }
}

/// An order as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub ordered_at: Timestamp,
    /// What the customer paid.
    pub amount: Money,
    /// What the merchant gave away (coupon or promotion), not included in `amount`.
    pub discount: Money,
    pub coupon_code: Option<String>,
    pub channel: Option<Channel>,
    pub status: OrderStatus,
}

impl NewOrder {
    /// Whether the order used a coupon: a coupon code, or any discount (the coupon share
    /// of profiles counts these).
    pub fn used_coupon(&self) -> bool {
        self.coupon_code.is_some() || self.discount > Money::ZERO
    }
}

/// The slice of an order the figures need, as scanned from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    pub customer_id: CustomerId,
    pub ordered_at: Timestamp,
    pub amount: Money,
    pub status: OrderStatus,
}
