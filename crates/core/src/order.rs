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
#[error("'{0}' is not an order status (paid or refunded)")]
pub struct StatusError(pub String);

impl OrderStatus {
    /// `paid` when empty; the Chinese words of the common exports are understood too.
    pub fn parse(text: &str) -> Result<OrderStatus, StatusError> {
        match text.trim() {
            "paid" => return Ok(OrderStatus::Paid),
            "refunded" => return Ok(OrderStatus::Refunded),
            _ => {}
        }
        match text.trim().to_lowercase().as_str() {
            "" | "paid" | "已付款" | "已支付" | "交易成功" | "已完成" | "已发货" | "completed" => {
                Ok(OrderStatus::Paid)
            }
            "refunded" | "已退款" | "退款成功" | "交易关闭" => Ok(OrderStatus::Refunded),
            _ => Err(StatusError(text.trim().to_owned())),
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
