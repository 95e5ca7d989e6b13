//! What both backends share: statements written once, in SQLite's `?N` form (`pg` derives
//! PostgreSQL's `$N` where the dialects agree), and one decoder per row type over
//! `RowAccess`, which both drivers' rows implement. Only what really differs stays in
//! `sqlite` and `postgres` (bulk loading, merges, the log).

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;

use siyu_core::CustomerFact;
use siyu_core::access::Role;
use siyu_core::metrics::cohorts::Month;
use siyu_core::privacy::AuditAction;
use siyu_core::profile::{Profile, ProfileSink};
use siyu_core::segment::pool::{Attributes, Thresholds};
use siyu_core::segment::rfm::Means;
use siyu_core::segment::rules::{RuleKind, TagFamily};
use siyu_core::{
    Channel, Customer, CustomerId, EventId, EventType, Gender, Money, NewEvent, NewOrder,
    OrderFact, OrderId, OrderStatus, TenantZone,
};

use crate::{
    AuditEntry, ConsoleUser, CustomerLine, HistoryRecord, ManualTag, Member, MemberFilter,
    PoolExtent, ProfileLine, Result, StoredRule, StoredToken, Tenant, corrupt, from_micros, other,
    stored_change, stored_kind, stored_purpose,
};

/// A value bound to a statement of [`Db`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// The two dialects' differences in statements otherwise written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// After `ORDER BY <text column>`: byte order, as SQLite sorts text by default.
    pub(crate) fn bytewise(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " COLLATE \"C\"",
        }
    }

    /// The column that orders a log's rows as they were written (`rule_history`,
    /// `audit_log`): SQLite's rowid, PostgreSQL's identity column.
    pub(crate) fn written_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }
}

/// Where the statements written once run: a connection or transaction of either driver.
/// For the paths that are the same on both backends and not hot (tokens, privacy), so
/// that each is written once; the hot paths bind their drivers' values directly.
pub(crate) trait Db {
    fn dialect(&self) -> Dialect;
    /// Runs a statement (SQLite's form); how many rows it changed.
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64>;
    /// Runs a query (SQLite's form), handing each row to `each`.
    fn each_row(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        each: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
    ) -> Result<()>;
}

/// The rows of a query, decoded.
pub(crate) fn rows<T>(
    db: &mut dyn Db,
    sql: &str,
    args: &[Arg<'_>],
    decode: impl Fn(&dyn RowAccess) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    db.each_row(sql, args, &mut |r| {
        out.push(decode(r)?);
        Ok(())
    })?;
    Ok(out)
}

fn sqlite_args<'a>(args: &'a [Arg<'_>]) -> Vec<&'a dyn rusqlite::ToSql> {
    args.iter()
        .map(|a| match a {
            Arg::Int(v) => v as &dyn rusqlite::ToSql,
            Arg::OptInt(v) => v,
            Arg::Text(v) => v,
            Arg::OptText(v) => v,
        })
        .collect()
}

fn sqlite_exec(conn: &rusqlite::Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.execute(sqlite_args(args).as_slice())? as u64)
}

fn sqlite_each_row(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
    each: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(sqlite_args(args).as_slice())?;
    while let Some(r) = rows.next()? {
        each(r)?;
    }
    Ok(())
}

fn pg_args<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Arg::Int(v) => v as &(dyn postgres::types::ToSql + Sync),
            Arg::OptInt(v) => v,
            Arg::Text(v) => v,
            Arg::OptText(v) => v,
        })
        .collect()
}

fn pg_exec(client: &mut impl postgres::GenericClient, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
    Ok(client.execute(&pg(sql), pg_args(args).as_slice())?)
}

fn pg_each_row(
    client: &mut impl postgres::GenericClient,
    sql: &str,
    args: &[Arg<'_>],
    each: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
) -> Result<()> {
    let mut rows = client.query_raw(&pg(sql), pg_args(args))?;
    while let Some(r) = rows.next()? {
        each(&r)?;
    }
    Ok(())
}

/// `Db` for a driver's connection or transaction, by that driver's two functions.
macro_rules! db_by {
    ($ty:ty, $dialect:expr, $exec:ident, $each_row:ident) => {
        impl Db for $ty {
            fn dialect(&self) -> Dialect {
                $dialect
            }

            fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
                $exec(self, sql, args)
            }

            fn each_row(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
                each: &mut dyn FnMut(&dyn RowAccess) -> Result<()>,
            ) -> Result<()> {
                $each_row(self, sql, args, each)
            }
        }
    };
}

db_by!(
    rusqlite::Connection,
    Dialect::Sqlite,
    sqlite_exec,
    sqlite_each_row
);
db_by!(
    rusqlite::Transaction<'_>,
    Dialect::Sqlite,
    sqlite_exec,
    sqlite_each_row
);
db_by!(postgres::Client, Dialect::Postgres, pg_exec, pg_each_row);
db_by!(
    postgres::Transaction<'_>,
    Dialect::Postgres,
    pg_exec,
    pg_each_row
);

/// Above this many customers, reading their orders and events by customer costs more
/// than reading the tenant's whole tables and passing over the rest.
pub(crate) const SCAN_ALL_ABOVE: usize = 10_000;

/// A row of either driver, read by column index.
pub(crate) trait RowAccess {
    fn text(&self, i: usize) -> Result<&str>;
    fn opt_text(&self, i: usize) -> Result<Option<&str>>;
    /// An integer column of any width (PostgreSQL's INTEGER or BIGINT, SQLite's INTEGER).
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
}

impl RowAccess for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<&str> {
        self.get_ref(i)?.as_str().map_err(other)
    }

    fn opt_text(&self, i: usize) -> Result<Option<&str>> {
        self.get_ref(i)?.as_str_or_null().map_err(other)
    }

    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
}

impl RowAccess for postgres::Row {
    fn text(&self, i: usize) -> Result<&str> {
        Ok(self.try_get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?
            .ok_or_else(|| corrupt("NULL in an integer column"))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        if *self.columns()[i].type_() == Type::INT4 {
            Ok(self.try_get::<_, Option<i32>>(i)?.map(i64::from))
        } else {
            Ok(self.try_get(i)?)
        }
    }
}

/// PostgreSQL's form of a statement written for SQLite: `$N` for each `?N`.
pub(crate) fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn parse_customer_id(s: &str) -> Result<CustomerId> {
    CustomerId::parse(s).map_err(|e| corrupt(format!("stored customer id: {e}")))
}

pub(crate) fn parse_channel(s: Option<&str>) -> Result<Option<Channel>> {
    s.map(|c| Channel::parse(c).map_err(other)).transpose()
}

pub(crate) fn parse_gender(s: Option<&str>) -> Result<Option<Gender>> {
    s.map(|g| Gender::parse(g).map_err(other)).transpose()
}

pub(crate) fn order_status(s: &str) -> Result<OrderStatus> {
    OrderStatus::from_stored(s).ok_or_else(|| corrupt(format!("stored order status '{s}'")))
}

fn at(us: Option<i64>) -> Result<Option<siyu_core::Timestamp>> {
    us.map(from_micros).transpose()
}

// ---- tenants, settings, channel costs ------------------------------------------------

/// A tenant (`?1` its name) made once, created now (`?2`).
pub(crate) const INSERT_TENANT: &str =
    "INSERT INTO tenants (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING";

/// A tenant by name (`?1`); a row for [`tenant_from`].
pub(crate) const TENANT_BY_NAME: &str = "SELECT id, name, time_zone FROM tenants WHERE name = ?1";

/// Every tenant, by name in byte order; rows for [`tenant_from`].
pub(crate) fn tenants_sql(d: Dialect) -> String {
    format!(
        "SELECT id, name, time_zone FROM tenants ORDER BY name{}",
        d.bytewise()
    )
}

pub(crate) fn tenant_from(r: &(impl RowAccess + ?Sized)) -> Result<Tenant> {
    Ok(Tenant {
        id: r.int(0)?,
        name: r.text(1)?.to_owned(),
        zone: TenantZone::named(r.text(2)?).map_err(other)?,
    })
}

/// How many customers, orders, events and tags a tenant (`?1`) has.
pub(crate) const TABLE_COUNTS: &str = "SELECT
        (SELECT count(*) FROM customers WHERE tenant_id = ?1),
        (SELECT count(*) FROM orders WHERE tenant_id = ?1),
        (SELECT count(*) FROM events WHERE tenant_id = ?1),
        (SELECT count(*) FROM customer_tags WHERE tenant_id = ?1)";

pub(crate) const SET_TIME_ZONE: &str = "UPDATE tenants SET time_zone = ?2 WHERE id = ?1";

/// A tenant's (`?1`) settings, by key.
pub(crate) const SETTINGS_OF: &str =
    "SELECT key, value FROM tenant_settings WHERE tenant_id = ?1 ORDER BY key";

/// Moves a tenant's change counter (see `TenantStore::changes`).
pub(crate) const BUMP_CHANGES: &str =
    "INSERT INTO tenant_changes (tenant_id, changes) VALUES (?1, 1)
     ON CONFLICT (tenant_id) DO UPDATE SET changes = tenant_changes.changes + 1";

pub(crate) const CHANGES_OF: &str =
    "SELECT coalesce((SELECT changes FROM tenant_changes WHERE tenant_id = ?1), 0)";

pub(crate) const SET_SETTING: &str =
    "INSERT INTO tenant_settings (tenant_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (tenant_id, key)
     DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

pub(crate) const SET_CHANNEL_COST: &str =
    "INSERT INTO channel_costs (tenant_id, channel, month, amount) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (tenant_id, channel, month) DO UPDATE SET amount = excluded.amount";

/// A tenant's (`?1`) channel costs, by channel (in byte order) and month; rows for
/// [`channel_cost_from`].
pub(crate) fn channel_costs_sql(d: Dialect) -> String {
    format!(
        "SELECT channel, month, amount FROM channel_costs WHERE tenant_id = ?1
         ORDER BY channel{}, month",
        d.bytewise()
    )
}

/// A channel's spend in a month from a row of [`channel_costs_sql`].
pub(crate) fn channel_cost_from(r: &(impl RowAccess + ?Sized)) -> Result<(Channel, Month, Money)> {
    Ok((
        Channel::parse(r.text(0)?).map_err(other)?,
        Month::parse(r.text(1)?).map_err(|e| corrupt(e.to_string()))?,
        Money::from_fen(r.int(2)?),
    ))
}

// ---- customers ----------------------------------------------------------------------

/// A customer (`?2`) of a tenant (`?1`); a row for [`customer_from`].
pub(crate) const CUSTOMER_BY_ID: &str =
    "SELECT name, phone, gender, birthday, region, channel, referrer_id, joined_at, opted_out_at
     FROM customers WHERE tenant_id = ?1 AND customer_id = ?2";

/// The customer `id` and when they opted out, if they did, from a row of
/// [`CUSTOMER_BY_ID`]' columns.
pub(crate) fn customer_from(
    id: &CustomerId,
    r: &(impl RowAccess + ?Sized),
) -> Result<(Customer, Option<siyu_core::Timestamp>)> {
    let customer = Customer {
        id: id.clone(),
        name: r.opt_text(0)?.map(str::to_owned),
        phone: r.opt_text(1)?.map(str::to_owned),
        gender: parse_gender(r.opt_text(2)?)?,
        birthday: r
            .opt_text(3)?
            .map(|b| TenantZone::read_day(b).map_err(other))
            .transpose()?,
        region: r.opt_text(4)?.map(str::to_owned),
        channel: parse_channel(r.opt_text(5)?)?,
        referrer_id: r.opt_text(6)?.map(parse_customer_id).transpose()?,
        joined_at: from_micros(r.int(7)?)?,
    };
    Ok((customer, at(r.opt_int(8)?)?))
}

/// The facts of a tenant's (`?1`) customers, `rest` (after `WHERE tenant_id = ?1`) saying
/// which and in what order; rows for [`customer_fact_from`].
pub(crate) fn customer_facts_sql(rest: &str) -> String {
    format!(
        "SELECT customer_id, channel, joined_at, referrer_id FROM customers
         WHERE tenant_id = ?1 {rest}"
    )
}

/// A customer's facts from a row of [`customer_facts_sql`].
pub(crate) fn customer_fact_from(r: &(impl RowAccess + ?Sized)) -> Result<CustomerFact> {
    Ok(CustomerFact {
        id: parse_customer_id(r.text(0)?)?,
        channel: parse_channel(r.opt_text(1)?)?,
        joined_at: from_micros(r.int(2)?)?,
        referrer_id: r.opt_text(3)?.map(parse_customer_id).transpose()?,
    })
}

// ---- orders -------------------------------------------------------------------------

/// Every order of a tenant (`?1`), in id order; rows for [`order_from`].
pub(crate) const SCAN_ORDERS: &str =
    "SELECT order_id, customer_id, ordered_at, amount, discount, coupon_code, channel, status
     FROM orders WHERE tenant_id = ?1 ORDER BY order_id";

/// An order from a row of [`SCAN_ORDERS`]' columns.
pub(crate) fn order_from(r: &(impl RowAccess + ?Sized)) -> Result<NewOrder> {
    Ok(NewOrder {
        id: OrderId::parse(r.text(0)?).map_err(other)?,
        customer_id: parse_customer_id(r.text(1)?)?,
        ordered_at: from_micros(r.int(2)?)?,
        amount: Money::from_fen(r.int(3)?),
        discount: Money::from_fen(r.int(4)?),
        coupon_code: r.opt_text(5)?.map(str::to_owned),
        channel: parse_channel(r.opt_text(6)?)?,
        status: order_status(r.text(7)?)?,
    })
}

/// The facts of every order of a tenant (`?1`); rows for [`order_fact_from`].
pub(crate) const SCAN_ORDER_FACTS: &str =
    "SELECT customer_id, ordered_at, amount, status FROM orders WHERE tenant_id = ?1";

/// An order's facts from a row of [`SCAN_ORDER_FACTS`]' columns.
pub(crate) fn order_fact_from(r: &(impl RowAccess + ?Sized)) -> Result<OrderFact> {
    Ok(OrderFact {
        customer_id: parse_customer_id(r.text(0)?)?,
        ordered_at: from_micros(r.int(1)?)?,
        amount: Money::from_fen(r.int(2)?),
        status: order_status(r.text(3)?)?,
    })
}

// ---- events -------------------------------------------------------------------------

/// Every event of a tenant (`?1`), in id order; rows for [`event_from`].
pub(crate) const SCAN_EVENTS: &str = "SELECT event_id, customer_id, type, occurred_at, properties
     FROM events WHERE tenant_id = ?1 ORDER BY event_id";

/// An event from a row of [`SCAN_EVENTS`]' columns.
pub(crate) fn event_from(r: &(impl RowAccess + ?Sized)) -> Result<NewEvent> {
    Ok(NewEvent {
        id: EventId::parse(r.text(0)?).map_err(other)?,
        customer_id: parse_customer_id(r.text(1)?)?,
        kind: EventType::parse(r.text(2)?).map_err(other)?,
        occurred_at: from_micros(r.int(3)?)?,
        properties: r.text(4)?.to_owned(),
    })
}

// ---- streamed facts and profile lines (the reports at scale) ------------------------

/// Every order of a tenant (`?1`) as profiles take it; rows for [`order_line_into`].
pub(crate) const STREAM_ORDERS: &str = "SELECT customer_id, ordered_at, amount, status,
        CASE WHEN coupon_code IS NOT NULL OR discount > 0 THEN 1 ELSE 0 END
     FROM orders WHERE tenant_id = ?1";

/// Every order of a tenant (`?1`) as the reports take it (no coupon read: reported as none),
/// on SQLite in customer-id order, which the covering index `orders_by_customer` gives
/// for free, so that the reports find each order's customer a step after the last one's
/// (PostgreSQL's index holds no amounts: there, in no particular order); rows for
/// [`order_line_into`].
pub(crate) fn report_orders_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            // Named, as the planner otherwise sorts the table's rows instead.
            "SELECT customer_id, ordered_at, amount, status, 0
             FROM orders INDEXED BY orders_by_customer
             WHERE tenant_id = ?1 ORDER BY customer_id"
        }
        Dialect::Postgres => {
            "SELECT customer_id, ordered_at, amount, status, 0 FROM orders WHERE tenant_id = ?1"
        }
    }
}

/// Hands a row of [`STREAM_ORDERS`] or [`report_orders_sql`] to `sink`, borrowed.
pub(crate) fn order_line_into(
    r: &(impl RowAccess + ?Sized),
    sink: &mut dyn ProfileSink,
) -> Result<()> {
    sink.order(
        r.text(0)?,
        from_micros(r.int(1)?)?,
        Money::from_fen(r.int(2)?),
        order_status(r.text(3)?)?,
        r.int(4)? != 0,
    );
    Ok(())
}

/// Every event of a tenant (`?1`) as profiles take it; rows for [`event_line_into`].
pub(crate) const STREAM_EVENTS: &str =
    "SELECT customer_id, type, occurred_at FROM events WHERE tenant_id = ?1";

/// Hands a row of [`STREAM_EVENTS`] to `sink`, borrowed.
pub(crate) fn event_line_into(
    r: &(impl RowAccess + ?Sized),
    sink: &mut dyn ProfileSink,
) -> Result<()> {
    sink.event(r.text(0)?, r.text(1)?, from_micros(r.int(2)?)?);
    Ok(())
}

/// The orders of a tenant's (`?1`) customers that `filter` (`AND …`) keeps, as profiles
/// take them; rows for [`order_line_into`].
pub(crate) fn order_lines_sql(filter: &str) -> String {
    format!("{STREAM_ORDERS} {filter}")
}

/// The events of a tenant's (`?1`) customers that `filter` (`AND …`) keeps, as profiles
/// take them; rows for [`event_line_into`].
pub(crate) fn event_lines_sql(filter: &str) -> String {
    format!("{STREAM_EVENTS} {filter}")
}

/// Each of a tenant's (`?1`) customers who names a referrer that `filter` (`AND …`, on
/// `c.referrer_id`) keeps: the referrer and the customer's net spend.
pub(crate) fn referees_sql(filter: &str) -> String {
    format!(
        "SELECT c.referrer_id, coalesce(p.net_spend, 0)
         FROM customers c
         LEFT JOIN profiles p ON p.tenant_id = c.tenant_id AND p.customer_id = c.customer_id
         WHERE c.tenant_id = ?1 AND c.referrer_id IS NOT NULL {filter}"
    )
}

/// Every stored profile of a tenant (`?1`), its stage columns; rows for
/// [`profile_line_from`].
pub(crate) const SCAN_PROFILE_LINES: &str = "SELECT customer_id, last_order_at, purchase_days,
        first_purchase_day, last_purchase_day, last_interaction_at, left_at, event_counts,
        referrals
     FROM profiles WHERE tenant_id = ?1";

/// A profile line from a row of [`SCAN_PROFILE_LINES`].
pub(crate) fn profile_line_from(r: &(impl RowAccess + ?Sized)) -> Result<ProfileLine<'_>> {
    let day = |s: Option<&str>| -> Result<Option<jiff::civil::Date>> {
        s.map(|d| TenantZone::read_day(d).map_err(other))
            .transpose()
    };
    let count = |n: i64| u32::try_from(n).map_err(|_| corrupt("a count out of range in profiles"));
    Ok(ProfileLine {
        customer_id: r.text(0)?,
        last_order_at: at(r.opt_int(1)?)?,
        purchase_days: count(r.int(2)?)?,
        first_purchase_day: day(r.opt_text(3)?)?,
        last_purchase_day: day(r.opt_text(4)?)?,
        last_interaction_at: at(r.opt_int(5)?)?,
        left_at: at(r.opt_int(6)?)?,
        event_counts: r.text(7)?,
        referrals: count(r.int(8)?)?,
    })
}

/// How many customers a tenant (`?1`) has and the latest join; a row for
/// [`pool_extent_from`].
pub(crate) const POOL_EXTENT: &str =
    "SELECT count(*), max(joined_at) FROM customers WHERE tenant_id = ?1";

pub(crate) fn pool_extent_from(r: &(impl RowAccess + ?Sized)) -> Result<PoolExtent> {
    Ok(PoolExtent {
        customers: u64::try_from(r.int(0)?).map_err(|_| corrupt("a negative count"))?,
        latest_join: at(r.opt_int(1)?)?,
    })
}

// ---- profiles -----------------------------------------------------------------------

/// The profile columns, first in every read of profiles (`p` profiles, `c` customers).
pub(crate) const PROFILE_COLUMNS: &str = "p.customer_id, c.joined_at, c.referrer_id,
    p.first_order_at, p.last_order_at, p.orders, p.purchase_days, p.first_purchase_day,
    p.last_purchase_day, p.net_spend, p.coupon_orders, p.last_interaction_at, p.left_at,
    p.event_counts, p.referrals, p.referral_revenue";

/// A profile from the first columns of a row (see [`PROFILE_COLUMNS`]).
pub(crate) fn profile_from(r: &(impl RowAccess + ?Sized)) -> Result<Profile> {
    let day = |s: Option<&str>| -> Result<Option<jiff::civil::Date>> {
        s.map(|d| TenantZone::read_day(d).map_err(other))
            .transpose()
    };
    let count = |n: i64| u32::try_from(n).map_err(|_| corrupt("a count out of range in profiles"));
    Ok(Profile {
        customer_id: parse_customer_id(r.text(0)?)?,
        joined_at: from_micros(r.int(1)?)?,
        referrer_id: r.opt_text(2)?.map(parse_customer_id).transpose()?,
        first_order_at: at(r.opt_int(3)?)?,
        last_order_at: at(r.opt_int(4)?)?,
        orders: count(r.int(5)?)?,
        purchase_days: count(r.int(6)?)?,
        first_purchase_day: day(r.opt_text(7)?)?,
        last_purchase_day: day(r.opt_text(8)?)?,
        net_spend: Money::from_fen(r.int(9)?),
        coupon_orders: count(r.int(10)?)?,
        last_interaction_at: at(r.opt_int(11)?)?,
        left_at: at(r.opt_int(12)?)?,
        event_counts: serde_json::from_str(r.text(13)?).map_err(other)?,
        referrals: count(r.int(14)?)?,
        referral_revenue: Money::from_fen(r.int(15)?),
    })
}

// ---- one customer's view ---------------------------------------------------------------

/// Stored profiles of a tenant (`?1`), `rest` (after `WHERE p.tenant_id = ?1`) saying
/// which and in what order; rows for [`profile_from`].
pub(crate) fn profiles_sql(rest: &str) -> String {
    format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles p
         JOIN customers c ON c.tenant_id = p.tenant_id AND c.customer_id = p.customer_id
         WHERE p.tenant_id = ?1 {rest}"
    )
}

/// The profile of a customer (`?2`) of a tenant (`?1`); a row for [`profile_from`].
pub(crate) fn profile_of() -> String {
    profiles_sql("AND p.customer_id = ?2")
}

/// A customer's (`?2`) latest orders, at most `?3`; rows for [`order_from`].
pub(crate) const RECENT_ORDERS: &str =
    "SELECT order_id, customer_id, ordered_at, amount, discount, coupon_code, channel, status
     FROM orders WHERE tenant_id = ?1 AND customer_id = ?2
     ORDER BY ordered_at DESC, order_id DESC LIMIT ?3";

/// A customer's (`?2`) latest events, at most `?3`; rows for [`event_from`].
pub(crate) const RECENT_EVENTS: &str = "SELECT event_id, customer_id, type, occurred_at, properties
     FROM events WHERE tenant_id = ?1 AND customer_id = ?2
     ORDER BY occurred_at DESC, event_id DESC LIMIT ?3";

// ---- customers' pages ---------------------------------------------------------------

/// A page of a tenant's (`?1`) customers after an id (`?2`), at most `?3`; rows for
/// [`customer_line_from`].
pub(crate) const CUSTOMERS_PAGE: &str =
    "SELECT c.customer_id, c.channel, c.joined_at, coalesce(p.orders, 0),
            coalesce(p.net_spend, 0), p.last_order_at
     FROM customers c
     LEFT JOIN profiles p ON p.tenant_id = c.tenant_id AND p.customer_id = c.customer_id
     WHERE c.tenant_id = ?1 AND c.customer_id > ?2
     ORDER BY c.customer_id LIMIT ?3";

/// A line of a customers' page from a row of [`CUSTOMERS_PAGE`]' columns.
pub(crate) fn customer_line_from(r: &(impl RowAccess + ?Sized)) -> Result<CustomerLine> {
    Ok(CustomerLine {
        id: parse_customer_id(r.text(0)?)?,
        channel: parse_channel(r.opt_text(1)?)?,
        joined_at: from_micros(r.int(2)?)?,
        orders: u32::try_from(r.int(3)?).map_err(|_| corrupt("negative order count"))?,
        net_spend: Money::from_fen(r.int(4)?),
        last_order_at: at(r.opt_int(5)?)?,
    })
}

// ---- rules: members and history -----------------------------------------------------

/// A tenant's (`?1`) saved rules, by kind and name; rows for [`stored_rule_from`].
pub(crate) const RULES_OF: &str =
    "SELECT kind, name, rule, created_by, created_at, purpose FROM rules
     WHERE tenant_id = ?1 ORDER BY kind, name";

/// A saved rule from a row of [`RULES_OF`]' columns.
pub(crate) fn stored_rule_from(r: &(impl RowAccess + ?Sized)) -> Result<StoredRule> {
    Ok(StoredRule {
        kind: stored_kind(r.text(0)?)?,
        name: r.text(1)?.to_owned(),
        rule: r.text(2)?.to_owned(),
        created_by: r.text(3)?.to_owned(),
        created_at: from_micros(r.int(4)?)?,
        purpose: stored_purpose(r.text(5)?)?,
    })
}

/// The condition (after `tenant_id = ?1`) of a filter of members or history, and the
/// values of the statement: the tenant, then the filter's.
pub(crate) fn member_filter(tenant: i64, filter: MemberFilter<'_>) -> (&'static str, Vec<Arg<'_>>) {
    match filter {
        MemberFilter::All => ("", vec![Arg::Int(tenant)]),
        MemberFilter::Rule(kind, name) => (
            "AND kind = ?2 AND name = ?3",
            vec![Arg::Int(tenant), Arg::Text(kind.as_str()), Arg::Text(name)],
        ),
        MemberFilter::Customer(id) => (
            "AND customer_id = ?2",
            vec![Arg::Int(tenant), Arg::Text(id.as_str())],
        ),
    }
}

/// The members of a tenant's (`?1`) rules that `{clause}` (of `member_filter`) keeps;
/// rows for [`member_from`].
pub(crate) fn members_sql(clause: &str) -> String {
    format!(
        "SELECT kind, name, customer_id, since FROM rule_members
         WHERE tenant_id = ?1 {clause} ORDER BY kind, name, customer_id"
    )
}

/// A rule's member from a row of `kind, name, customer_id, since`.
pub(crate) fn member_from(r: &(impl RowAccess + ?Sized)) -> Result<Member> {
    Ok(Member {
        kind: stored_kind(r.text(0)?)?,
        name: r.text(1)?.to_owned(),
        customer_id: parse_customer_id(r.text(2)?)?,
        since: from_micros(r.int(3)?)?,
    })
}

/// The memberships of a tenant's (`?1`) customers after `?2` up to and including `?3`,
/// from the covering index; rows for [`member_from`].
pub(crate) const MEMBERSHIPS_BETWEEN: &str = "SELECT kind, name, customer_id, since
     FROM rule_members WHERE tenant_id = ?1 AND customer_id > ?2 AND customer_id <= ?3";

/// The members of a tenant's (`?1`) rule (`?2`, `?3`) after `?4` up to and including
/// `?5`, in id order, from the primary key: their ids.
pub(crate) const RULE_MEMBERS_BETWEEN: &str = "SELECT customer_id FROM rule_members
     WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3 AND customer_id > ?4 AND customer_id <= ?5
     ORDER BY customer_id";

/// A page of a tenant's (`?1`) rule's (`?2`, `?3`) members after `?4`, at most `?5`;
/// rows for [`member_from`].
pub(crate) const MEMBERS_AFTER: &str = "SELECT kind, name, customer_id, since FROM rule_members
     WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3 AND customer_id > ?4
     ORDER BY customer_id LIMIT ?5";

/// Every customer's figures for the thresholds but the spend, in id order: a tenant's
/// (`?1`) profiles; rows for [`pool_figures_from`]. The spend of each is merged in by the
/// caller from a pass over the orders in the same order: joined to the orders grouped, the
/// plan depended on the planner's statistics, and PostgreSQL's without any (right after a
/// bulk load) compared every profile with every customer's sum (minutes at 100,000).
pub(crate) const POOL_FIGURES: &str = "SELECT customer_id, last_purchase_day, orders, net_spend
     FROM profiles WHERE tenant_id = ?1 ORDER BY customer_id";

/// A customer's figures from a row of [`POOL_FIGURES`] and their spend.
pub(crate) fn pool_figures_from(
    r: &(impl RowAccess + ?Sized),
    spend: i64,
) -> Result<crate::PoolFigures> {
    Ok(crate::PoolFigures {
        last_purchase_day: r
            .opt_text(1)?
            .map(|d| TenantZone::read_day(d).map_err(other))
            .transpose()?,
        orders: u32::try_from(r.int(2)?)
            .map_err(|_| corrupt("a count out of range in profiles"))?,
        net_spend: Money::from_fen(r.int(3)?),
        spend: Money::from_fen(spend),
    })
}

/// Up to `?3` ids of a tenant's (`?1`) customers with a profile after `?2`, in id order.
pub(crate) const POOL_IDS_AFTER: &str = "SELECT customer_id FROM profiles
     WHERE tenant_id = ?1 AND customer_id > ?2 ORDER BY customer_id LIMIT ?3";

/// How many members each rule of a tenant (`?1`) has; rows for [`member_count_from`].
/// With `?2` a kind, that kind's rules only (`?2` empty: all).
pub(crate) const MEMBER_COUNTS: &str = "SELECT kind, name, count(*) FROM rule_members
     WHERE tenant_id = ?1 AND (?2 = '' OR kind = ?2) GROUP BY kind, name ORDER BY kind, name";

/// A rule and its member count from a row of [`MEMBER_COUNTS`].
pub(crate) fn member_count_from(r: &(impl RowAccess + ?Sized)) -> Result<(RuleKind, String, u64)> {
    Ok((
        stored_kind(r.text(0)?)?,
        r.text(1)?.to_owned(),
        u64::try_from(r.int(2)?).map_err(|_| corrupt("a negative count"))?,
    ))
}

/// A tenant's (`?1`) recorded changes that `{clause}` (of `member_filter`) keeps, newest
/// first, at most `limit`; rows for [`history_from`].
pub(crate) fn history_sql(d: Dialect, clause: &str, offset: usize, limit: usize) -> String {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    format!(
        "SELECT kind, name, customer_id, change, at, cause FROM rule_history
         WHERE tenant_id = ?1 {clause} ORDER BY at DESC, {} DESC LIMIT {limit} OFFSET {offset}",
        d.written_order()
    )
}

/// A quarter-hour in microseconds.
pub(crate) const QUARTER_HOUR_MICROS: i64 = 15 * 60 * 1_000_000;

/// A tenant's (`?1`) rule's (`?2`, `?3`) changes from `?4` on counted by quarter-hour:
/// rows of the quarter-hour's number, the change, and how many.
pub(crate) fn history_buckets_sql() -> String {
    let q = QUARTER_HOUR_MICROS;
    format!(
        "SELECT at / {q}, change, count(*) FROM rule_history
         WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3 AND at >= ?4
         GROUP BY at / {q}, change ORDER BY at / {q}"
    )
}

/// A tenant's (`?1`) changes of lifecycle stage from `?2` on, by customer, each oldest
/// first; rows for [`history_from`].
pub(crate) fn stage_history_sql(d: Dialect) -> String {
    format!(
        "SELECT kind, name, customer_id, change, at, cause FROM rule_history
         WHERE tenant_id = ?1 AND kind = 'level' AND name LIKE 'stage:%' AND at >= ?2
         ORDER BY customer_id, at, {}",
        d.written_order()
    )
}

/// A change of membership from a row of [`history_sql`].
pub(crate) fn history_from(r: &(impl RowAccess + ?Sized)) -> Result<HistoryRecord> {
    Ok(HistoryRecord {
        kind: stored_kind(r.text(0)?)?,
        name: r.text(1)?.to_owned(),
        customer_id: parse_customer_id(r.text(2)?)?,
        change: stored_change(r.text(3)?)?,
        at: from_micros(r.int(4)?)?,
        cause: r.text(5)?.to_owned(),
    })
}

/// Saves a tenant's (`?1`) rule (`?2`–`?7`: kind, name, rule, by, at, purpose), replacing
/// one of the same kind and name.
pub(crate) const SAVE_RULE: &str =
    "INSERT INTO rules (tenant_id, kind, name, rule, created_by, created_at, purpose)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (tenant_id, kind, name) DO UPDATE SET
         rule = excluded.rule, created_by = excluded.created_by,
         created_at = excluded.created_at, purpose = excluded.purpose";

/// A tenant's (`?1`) rule (`?2`, `?3`), then its members.
pub(crate) const DELETE_RULE: &str =
    "DELETE FROM rules WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3";
pub(crate) const DELETE_RULE_MEMBERS: &str =
    "DELETE FROM rule_members WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3";

/// Whether a tenant (`?1`) has a customer (`?2`): a row if so.
pub(crate) const HAS_CUSTOMER: &str =
    "SELECT 1 FROM customers WHERE tenant_id = ?1 AND customer_id = ?2";

/// Every customer's attributes of a tenant (`?1`); rows for [`attributes_from`].
pub(crate) const ATTRIBUTES: &str =
    "SELECT customer_id, channel, region, gender, opted_out_at FROM customers
     WHERE tenant_id = ?1";

/// A customer and their attributes from a row of [`ATTRIBUTES`].
pub(crate) fn attributes_from(r: &(impl RowAccess + ?Sized)) -> Result<(CustomerId, Attributes)> {
    Ok((
        parse_customer_id(r.text(0)?)?,
        Attributes {
            channel: parse_channel(r.opt_text(1)?)?,
            region: r.opt_text(2)?.map(str::to_owned),
            gender: parse_gender(r.opt_text(3)?)?,
            opted_out: r.opt_int(4)?.is_some(),
        },
    ))
}

/// The manual and imported tags of a tenant (`?1`), of the customer `?2` if `one`, by
/// customer and tag; rows for [`manual_tag_from`] (the tag first).
pub(crate) fn manual_tags_sql(one: bool) -> &'static str {
    if one {
        "SELECT tag, source, since, customer_id FROM customer_tags
         WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY customer_id, tag"
    } else {
        "SELECT tag, source, since, customer_id FROM customer_tags
         WHERE tenant_id = ?1 ORDER BY customer_id, tag"
    }
}

/// A tag from a row of [`manual_tags_sql`].
pub(crate) fn manual_tag_from(r: &(impl RowAccess + ?Sized)) -> Result<ManualTag> {
    Ok(ManualTag {
        customer_id: parse_customer_id(r.text(3)?)?,
        tag: r.text(0)?.to_owned(),
        source: r.text(1)?.to_owned(),
        since: from_micros(r.int(2)?)?,
    })
}

/// Tags a customer (`?2`, `?3` the tag, `?4` the source, `?5` since) unless they have the tag.
pub(crate) const INSERT_TAG: &str =
    "INSERT INTO customer_tags (tenant_id, customer_id, tag, source, since)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

pub(crate) const DELETE_TAG: &str =
    "DELETE FROM customer_tags WHERE tenant_id = ?1 AND customer_id = ?2 AND tag = ?3";

/// The families set for a tenant's (`?1`) tags, by tag; rows for [`tag_family_from`].
pub(crate) const TAG_FAMILIES: &str =
    "SELECT tag, family FROM tag_families WHERE tenant_id = ?1 ORDER BY tag";

pub(crate) fn tag_family_from(r: &(impl RowAccess + ?Sized)) -> Result<(String, TagFamily)> {
    let family = r.text(1)?;
    let family =
        TagFamily::parse(family).ok_or_else(|| corrupt(format!("stored tag family '{family}'")))?;
    Ok((r.text(0)?.to_owned(), family))
}

pub(crate) const SET_TAG_FAMILY: &str =
    "INSERT INTO tag_families (tenant_id, tag, family) VALUES (?1, ?2, ?3)
     ON CONFLICT (tenant_id, tag) DO UPDATE SET family = excluded.family";

// ---- privacy ------------------------------------------------------------------------

/// The suppression keys of a tenant's (`?1`) erased customers.
pub(crate) const SUPPRESSION_KEYS: &str = "SELECT key FROM suppressions WHERE tenant_id = ?1";

/// An erasure, in order, each of a tenant (`?1`) and customer (`?2`): the customer's row
/// keeps nothing personal under the remains id (`?3`, opted out at `?4`), …
pub(crate) const ERASE_CUSTOMER: &str =
    "UPDATE customers SET customer_id = ?3, name = NULL, phone = NULL, gender = NULL,
            birthday = NULL, region = NULL, opted_out_at = ?4, version = version + 1
     WHERE tenant_id = ?1 AND customer_id = ?2";
/// … the orders and profile move to the remains id, and the referees name it …
pub(crate) const ERASE_ORDERS: &str = "UPDATE orders SET customer_id = ?3, version = version + 1
     WHERE tenant_id = ?1 AND customer_id = ?2";
pub(crate) const ERASE_PROFILE: &str =
    "UPDATE profiles SET customer_id = ?3 WHERE tenant_id = ?1 AND customer_id = ?2";
pub(crate) const ERASE_REFERRER: &str =
    "UPDATE customers SET referrer_id = ?3 WHERE tenant_id = ?1 AND referrer_id = ?2";
/// … and the rows of these tables go.
pub(crate) const ERASED_TABLES: [&str; 5] = [
    "events",
    "customer_tags",
    "rule_members",
    "rule_history",
    "identities",
];

/// The deletion of a customer's (`?2`) rows of `table` (of [`ERASED_TABLES`]).
pub(crate) fn erase_from(table: &str) -> String {
    format!("DELETE FROM {table} WHERE tenant_id = ?1 AND customer_id = ?2")
}

pub(crate) const INSERT_SUPPRESSION: &str =
    "INSERT INTO suppressions (tenant_id, key, erased_at) VALUES (?1, ?2, ?3)
     ON CONFLICT (tenant_id, key) DO NOTHING";

pub(crate) const SET_OPT_OUT: &str =
    "UPDATE customers SET opted_out_at = ?3 WHERE tenant_id = ?1 AND customer_id = ?2";

pub(crate) const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (tenant_id, at, actor, action, subject, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The columns of [`audit_entry_from`], first in every read of `audit_log`.
pub(crate) const AUDIT_COLUMNS: &str = "at, actor, action, subject, detail";

/// A tenant's (`?1`) audit log, of one subject (`?2`) or of all (`?2` NULL), newest
/// first, at most `?3` entries; rows for [`audit_entry_from`].
pub(crate) fn audit_log_sql(d: Dialect) -> String {
    format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log
         WHERE tenant_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR subject = ?2)
         ORDER BY at DESC, {} DESC LIMIT ?3",
        d.written_order()
    )
}

/// An entry of the audit log from a row of [`AUDIT_COLUMNS`].
pub(crate) fn audit_entry_from(r: &(impl RowAccess + ?Sized)) -> Result<AuditEntry> {
    let action = r.text(2)?;
    Ok(AuditEntry {
        at: from_micros(r.int(0)?)?,
        actor: r.text(1)?.to_owned(),
        action: AuditAction::parse(action)
            .ok_or_else(|| corrupt(format!("audit action '{action}'")))?,
        subject: r.text(3)?.to_owned(),
        detail: r.text(4)?.to_owned(),
    })
}

// ---- API tokens ---------------------------------------------------------------------

pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (token_hash, tenant_id, role, label, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5)";

/// The token of a hash (`?1`); a row for [`token_from`].
pub(crate) const TOKEN_BY_HASH: &str = "SELECT t.token_hash, t.tenant_id, n.name, n.time_zone,
        t.role, t.label, t.created_at, t.revoked_at
     FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
     WHERE t.token_hash = ?1";

/// A tenant's (`?1`) tokens, newest first; rows for [`token_from`].
pub(crate) const TOKENS_OF: &str = "SELECT t.token_hash, t.tenant_id, n.name, n.time_zone,
        t.role, t.label, t.created_at, t.revoked_at
     FROM api_tokens t JOIN tenants n ON n.id = t.tenant_id
     WHERE t.tenant_id = ?1 ORDER BY t.created_at DESC, t.token_hash";

/// A token from a row of [`TOKEN_BY_HASH`]' columns.
pub(crate) fn token_from(r: &(impl RowAccess + ?Sized)) -> Result<StoredToken> {
    let role = r.text(4)?;
    Ok(StoredToken {
        hash: r.text(0)?.to_owned(),
        tenant: Tenant {
            id: r.int(1)?,
            name: r.text(2)?.to_owned(),
            zone: TenantZone::named(r.text(3)?).map_err(other)?,
        },
        role: Role::parse(role).ok_or_else(|| corrupt(format!("stored role '{role}'")))?,
        label: r.text(5)?.to_owned(),
        created_at: from_micros(r.int(6)?)?,
        revoked_at: at(r.opt_int(7)?)?,
    })
}

// ---- the console's users and sessions ----------------------------------------------

pub(crate) const INSERT_CONSOLE_USER: &str = "INSERT INTO console_users
        (tenant_id, name, role, password_hash, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (tenant_id, name) DO NOTHING";

/// The columns [`console_user_from`] reads, of `console_users u JOIN tenants n`.
const CONSOLE_USER_COLUMNS: &str = "u.tenant_id, n.name, n.time_zone, u.name, u.role,
        u.password_hash, u.created_at, u.failures, u.locked_until";

pub(crate) fn console_user_by_name() -> String {
    format!(
        "SELECT {CONSOLE_USER_COLUMNS} FROM console_users u JOIN tenants n ON n.id = u.tenant_id
         WHERE u.tenant_id = ?1 AND u.name = ?2"
    )
}

pub(crate) fn console_users_of() -> String {
    format!(
        "SELECT {CONSOLE_USER_COLUMNS} FROM console_users u JOIN tenants n ON n.id = u.tenant_id
         WHERE u.tenant_id = ?1 ORDER BY u.name"
    )
}

/// The session of a hash (`?1`) unexpired at `?2`, with its user: the user's columns, then
/// the session's csrf and expiry.
pub(crate) fn console_session_by_hash() -> String {
    format!(
        "SELECT {CONSOLE_USER_COLUMNS}, s.csrf, s.expires_at
         FROM console_sessions s
         JOIN console_users u ON u.tenant_id = s.tenant_id AND u.name = s.user_name
         JOIN tenants n ON n.id = u.tenant_id
         WHERE s.session_hash = ?1 AND s.expires_at > ?2"
    )
}

/// A console user from the columns of [`CONSOLE_USER_COLUMNS`].
pub(crate) fn console_user_from(r: &(impl RowAccess + ?Sized)) -> Result<ConsoleUser> {
    let role = r.text(4)?;
    let locked = r.int(8)?;
    Ok(ConsoleUser {
        tenant: Tenant {
            id: r.int(0)?,
            name: r.text(1)?.to_owned(),
            zone: TenantZone::named(r.text(2)?).map_err(other)?,
        },
        name: r.text(3)?.to_owned(),
        role: Role::parse(role).ok_or_else(|| corrupt(format!("stored role '{role}'")))?,
        password_hash: r.text(5)?.to_owned(),
        created_at: from_micros(r.int(6)?)?,
        failures: u32::try_from(r.int(7)?).unwrap_or(u32::MAX),
        locked_until: if locked == 0 {
            None
        } else {
            Some(from_micros(locked)?)
        },
    })
}

// ---- the day's thresholds ---------------------------------------------------------------

/// A tenant's (`?1`) thresholds; a row for [`thresholds_from`].
pub(crate) const THRESHOLDS_OF: &str = "SELECT day, super_user, rfm_customers, rfm_recency_days,
        rfm_orders, rfm_monetary
     FROM pool_thresholds WHERE tenant_id = ?1";

/// Replaces a tenant's (`?1`) thresholds with those of [`thresholds_values`] (`?2`–`?7`),
/// computed at `?8`.
pub(crate) const SAVE_THRESHOLDS: &str = "INSERT INTO pool_thresholds
        (tenant_id, day, super_user, rfm_customers, rfm_recency_days, rfm_orders, rfm_monetary,
         computed_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (tenant_id) DO UPDATE SET day = excluded.day, super_user = excluded.super_user,
        rfm_customers = excluded.rfm_customers, rfm_recency_days = excluded.rfm_recency_days,
        rfm_orders = excluded.rfm_orders, rfm_monetary = excluded.rfm_monetary,
        computed_at = excluded.computed_at";

/// The thresholds' day as stored, and their numbers in the order of [`SAVE_THRESHOLDS`]
/// (`?3`–`?7`).
pub(crate) fn thresholds_values(t: &Thresholds) -> Result<(String, Option<i64>, [i64; 4])> {
    let big = |n: u64| i64::try_from(n).map_err(|_| corrupt("a threshold out of range"));
    Ok((
        t.day.to_string(),
        t.super_user.map(Money::fen),
        [
            big(t.rfm.customers)?,
            big(t.rfm.recency_days_total)?,
            big(t.rfm.orders_total)?,
            t.rfm.monetary_total.fen(),
        ],
    ))
}

/// Thresholds from a row of [`THRESHOLDS_OF`].
pub(crate) fn thresholds_from(r: &(impl RowAccess + ?Sized)) -> Result<Thresholds> {
    let count = |n: i64| u64::try_from(n).map_err(|_| corrupt("a negative sum in pool_thresholds"));
    Ok(Thresholds {
        day: TenantZone::read_day(r.text(0)?).map_err(other)?,
        super_user: r.opt_int(1)?.map(Money::from_fen),
        rfm: Means {
            customers: count(r.int(2)?)?,
            recency_days_total: count(r.int(3)?)?,
            orders_total: count(r.int(4)?)?,
            monetary_total: Money::from_fen(r.int(5)?),
        },
    })
}

// ---- The reports' reads (issue 18) ----

/// The events of some kinds of a tenant (`?1`) on SQLite, the kinds bound from `?2` on:
/// rows for [`event_line_into`]. SQLite still visits every event, but only those of the
/// kinds reach the caller.
pub(crate) fn stream_events_of_kinds(kinds: usize) -> String {
    let list: Vec<String> = (0..kinds).map(|k| format!("?{}", k + 2)).collect();
    format!(
        "SELECT customer_id, type, occurred_at FROM events
         WHERE tenant_id = ?1 AND type IN ({})",
        list.join(", ")
    )
}

/// The events of the kinds in the array `?2` of a tenant (`?1`) on PostgreSQL: rows for
/// [`event_line_into`].
pub(crate) const STREAM_EVENTS_OF_KINDS: &str = "SELECT customer_id, type, occurred_at FROM events
     WHERE tenant_id = ?1 AND type = ANY(?2)";

/// The latest `left` event of each profile of a tenant (`?1`) that has one.
pub(crate) const SCAN_LEFT_AT: &str =
    "SELECT customer_id, left_at FROM profiles WHERE tenant_id = ?1 AND left_at IS NOT NULL";

/// The stored profiles of a tenant (`?1`) with an interaction whose event counts name
/// `share` or whose latest interaction is at or after `?2`: the customer, the latest
/// interaction and the event counts (kinds are `[a-z0-9_]`, so `"share"` in the text is
/// that key). The referral figures' shares without a row per profile.
pub(crate) const SCAN_SHARE_COUNTS: &str =
    "SELECT customer_id, last_interaction_at, event_counts FROM profiles
     WHERE tenant_id = ?1 AND last_interaction_at IS NOT NULL
       AND (last_interaction_at >= ?2 OR event_counts LIKE '%\"share\"%')";

/// How many profiles a tenant (`?1`) has.
pub(crate) const COUNT_PROFILES: &str = "SELECT count(*) FROM profiles WHERE tenant_id = ?1";

/// A tenant's (`?1`) customer's (`?2`) identities, by namespace and value.
pub(crate) const IDENTITIES_OF: &str = "SELECT namespace, value, source, created_at FROM identities
     WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY namespace, value";

/// The customer holding an identity (`?2`, `?3`) of a tenant (`?1`).
pub(crate) const IDENTITY_HOLDER: &str = "SELECT customer_id FROM identities
     WHERE tenant_id = ?1 AND namespace = ?2 AND value = ?3";

/// Runs `work` in a transaction of its own on the connection: committed if it succeeds,
/// rolled back if not. On SQLite the write lock is taken at the start, not on the first
/// write (a reader's upgrade could find another writer and fail at once).
pub(crate) fn in_transaction<T>(
    db: &mut dyn Db,
    work: impl FnOnce(&mut dyn Db) -> Result<T>,
) -> Result<T> {
    let begin = match db.dialect() {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    };
    db.exec(begin, &[])?;
    match work(db) {
        Ok(v) => {
            db.exec("COMMIT", &[])?;
            Ok(v)
        }
        Err(e) => {
            // The error is the story; a failed rollback adds nothing to it.
            let _ = db.exec("ROLLBACK", &[]);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pg;

    #[test]
    fn the_postgres_form_numbers_parameters_with_dollars() {
        assert_eq!(
            pg("SELECT a FROM t WHERE x = ?1 AND y = ?12 AND z = '?'"),
            "SELECT a FROM t WHERE x = $1 AND y = $12 AND z = '?'"
        );
    }
}
