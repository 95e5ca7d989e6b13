//! siyu-core: the domain of siyu, pure and synchronous. Types for tenants' customers,
//! orders and events; the rules that read merchants' files; the figures.

pub mod access;
pub mod campaign;
pub mod channel;
pub mod clv;
pub mod customer;
pub mod demo;
pub mod event;
pub mod fasthash;
pub mod ids;
pub mod import;
pub mod lifecycle;
pub mod metrics;
pub mod money;
pub mod order;
pub mod privacy;
pub mod profile;
pub mod rng;
pub mod rule;
pub mod segment;
pub mod settings;
pub mod time;

pub use channel::Channel;
pub use customer::{Customer, CustomerFact, Gender, NewCustomer, SeenCustomer};
pub use event::{EventType, NewEvent};
pub use ids::{CustomerId, EventId, OrderId};
pub use money::Money;
pub use order::{NewOrder, OrderFact, OrderStatus};
pub use time::{TenantZone, Timestamp};
