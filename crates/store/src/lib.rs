//! siyu-store: where tenants' customers, orders and events live. The traits by area, a
//! `Store` supertrait over them, and two backends: SQLite (the embedded default) and
//! PostgreSQL (scale-out). The only crate that writes SQL.
//!
//! Every table is keyed by tenant first, so a tenant's rows can be distributed together
//! (e.g. Citus with `tenant_id` as the distribution column) without a schema change.
//! Instants are stored as microseconds since the Unix epoch (UTC), money as fen.

mod campaign;
mod delivery;
mod merge;
mod postgres;
mod shared;
mod sql;
mod sqlite;

use siyu_core::CustomerFact;
use siyu_core::access::Role;
use siyu_core::metrics::cohorts::Month;
use siyu_core::privacy::AuditAction;
use siyu_core::profile::{Interactions, Profile, ProfileSink};
use siyu_core::segment::pool::{Attributes, Thresholds};
use siyu_core::segment::rules::{Change, Purpose, RuleKind, TagFamily};
use siyu_core::{
    Channel, Customer, CustomerId, Money, NewCustomer, NewEvent, NewOrder, OrderFact, SeenCustomer,
};
use siyu_core::{TenantZone, Timestamp};

pub use crate::campaign::{
    CampaignStore, CodeUse, CouponRow, DecisionRow, DueStep, ExportRow, NewCoupon, NewDecision,
    NewRun, NewTrigger, StepWrites, StoredCampaign, StoredOffer,
};
pub use crate::delivery::{
    Claimed, DeliveryStore, DeliveryWrites, NewDelivery, OutboxCount, OutboxRow, Outcome,
    SendState, WebhookEndpoint,
};
pub use crate::postgres::PgStore;
pub use crate::sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A conflict with a concurrent transaction (PostgreSQL's deadlock or serialization
    /// failure): nothing was written, and the same transaction run again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Other(e) => postgres::is_transient(e.as_ref()),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One merchant. Every row of every table belongs to exactly one.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub zone: TenantZone,
}

/// What a batch of upserts did, row by row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, rhs: WriteCounts) {
        self.inserted += rhs.inserted;
        self.updated += rhs.updated;
        self.unchanged += rhs.unchanged;
    }
}

/// How many rows a tenant has in each table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub customers: u64,
    pub orders: u64,
    pub events: u64,
    pub tags: u64,
}

pub trait TenantStore {
    /// The tenant of that name, created (in the default time zone) if new.
    fn tenant(&mut self, name: &str) -> Result<Tenant>;
    /// Every tenant in the database, by name; a read that creates none.
    fn tenants(&mut self) -> Result<Vec<Tenant>>;
    /// The tenant's stored settings, `(key, value)` in key order (siyu-core checks them).
    fn settings(&mut self, tenant: &Tenant) -> Result<Vec<(String, String)>>;
    fn set_setting(&mut self, tenant: &Tenant, key: &str, value: &str) -> Result<()>;
    /// Moves the tenant's day boundaries to another IANA zone.
    fn set_time_zone(&mut self, tenant: &Tenant, zone: &TenantZone) -> Result<()>;
    /// The tenant's change counter: it moves with every committed write of the tenant's
    /// rows, settings, channel costs or identities, by any connection or process (0 before
    /// the first). A figure computed after reading `n` holds every write before `n`.
    fn changes(&mut self, tenant: &Tenant) -> Result<i64>;
}

pub trait CustomerStore {
    fn customer(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Customer>;
    /// Manual and imported tags of a customer, sorted.
    fn customer_tags(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Vec<String>>;
    /// Every customer of the tenant, in id order.
    fn scan_customers(&mut self, tenant: &Tenant, each: &mut dyn FnMut(CustomerFact))
    -> Result<()>;
    /// Every customer of the tenant with a birthday, with it, in id order.
    fn scan_birthdays(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(CustomerId, jiff::civil::Date),
    ) -> Result<()>;
}

pub trait OrderStore {
    /// Every order of the tenant, in order-id order.
    fn scan_orders(&mut self, tenant: &Tenant, each: &mut dyn FnMut(NewOrder)) -> Result<()>;
    /// Every order of the tenant as the figures need it.
    fn scan_order_facts(&mut self, tenant: &Tenant, each: &mut dyn FnMut(OrderFact)) -> Result<()>;
    /// The orders of these customers alone as the figures need them (by the customer
    /// index, never a scan of the tenant), in no particular order.
    fn order_facts_of(
        &mut self,
        tenant: &Tenant,
        customers: &[CustomerId],
        each: &mut dyn FnMut(OrderFact),
    ) -> Result<()>;
}

/// Everything held on one customer, for the 360 view.
#[derive(Debug, Clone)]
pub struct CustomerView {
    pub customer: Customer,
    pub profile: Option<Profile>,
    /// Newest first.
    pub recent_orders: Vec<NewOrder>,
    /// Newest first.
    pub recent_events: Vec<NewEvent>,
    pub manual_tags: Vec<ManualTag>,
    /// Segments, rule tags and level tags the customer is in (as of the last evaluation).
    pub memberships: Vec<Member>,
    /// When the customer opted out of marketing, if they did.
    pub opted_out_at: Option<Timestamp>,
}

/// A line of the customer list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerLine {
    pub id: CustomerId,
    pub channel: Option<Channel>,
    pub joined_at: Timestamp,
    pub orders: u32,
    pub net_spend: Money,
    pub last_order_at: Option<Timestamp>,
}

/// Reads of single customers and pages of them, for the API.
pub trait CustomerViewStore {
    /// The customer's view with up to `recent` orders and events; none if unknown.
    fn customer_view(
        &mut self,
        tenant: &Tenant,
        id: &CustomerId,
        recent: usize,
    ) -> Result<Option<CustomerView>>;
    /// Up to `limit` customers after `after` in id order (byte order).
    fn customers_page(
        &mut self,
        tenant: &Tenant,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerLine>>;
}

/// An API token as stored: its hash, never the token.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub hash: String,
    pub tenant: Tenant,
    pub role: Role,
    pub label: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// API tokens, by the SHA-256 of the token.
pub trait TokenStore {
    fn create_token(
        &mut self,
        tenant: &Tenant,
        hash: &str,
        role: Role,
        label: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// The token with this hash, with its tenant, if it exists (revoked or not).
    fn token(&mut self, hash: &str) -> Result<Option<StoredToken>>;
    /// The tenant's tokens, newest first.
    fn tokens(&mut self, tenant: &Tenant) -> Result<Vec<StoredToken>>;
    /// Revokes a token of the tenant by a prefix of its hash; false if none matched.
    fn revoke_token(&mut self, tenant: &Tenant, hash_prefix: &str, now: Timestamp) -> Result<bool>;
}

/// A user of the web console, as stored: the argon2 hash of their password, never the
/// password.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub tenant: Tenant,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: Timestamp,
    /// Failed sign-ins since the last good one.
    pub failures: u32,
    /// Signing in is refused until then, after repeated failures.
    pub locked_until: Option<Timestamp>,
}

/// A signed-in session of the console, by the SHA-256 of its cookie's secret.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub user: ConsoleUser,
    /// The token every form of the session carries (CSRF).
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// The console's users and their sessions.
pub trait ConsoleStore {
    /// Creates a user; false when the tenant has one of that name.
    fn create_user(
        &mut self,
        tenant: &Tenant,
        name: &str,
        role: Role,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool>;
    /// A user of a tenant by name.
    fn console_user(&mut self, tenant: &Tenant, name: &str) -> Result<Option<ConsoleUser>>;
    /// The tenant's users, by name.
    fn console_users(&mut self, tenant: &Tenant) -> Result<Vec<ConsoleUser>>;
    /// Deletes a user and their sessions; false when there was none.
    fn delete_user(&mut self, tenant: &Tenant, name: &str) -> Result<bool>;
    /// Sets a user's password hash and ends their sessions; false when there is no such user.
    fn set_password(&mut self, tenant: &Tenant, name: &str, password_hash: &str) -> Result<bool>;
    /// Records a sign-in's outcome: a failure count and lock, or (0, None) after a good one.
    fn record_sign_in(
        &mut self,
        tenant: &Tenant,
        name: &str,
        failures: u32,
        locked_until: Option<Timestamp>,
    ) -> Result<()>;
    /// Starts a session for a user.
    fn create_session(
        &mut self,
        tenant: &Tenant,
        user: &str,
        session_hash: &str,
        csrf: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// The session with this hash and its user, if it exists and has not expired at `now`.
    fn session(&mut self, session_hash: &str, now: Timestamp) -> Result<Option<ConsoleSession>>;
    /// Ends a session (sign-out), and every session that expired before `now`.
    fn end_session(&mut self, session_hash: &str, now: Timestamp) -> Result<()>;
    /// Customers whose id or phone is `text`, or whose name starts with it, by id, at
    /// most `limit` (the console's search).
    fn search_customers(
        &mut self,
        tenant: &Tenant,
        text: &str,
        limit: usize,
    ) -> Result<Vec<CustomerLine>>;
}

/// Acquisition spend per source channel and month.
pub trait ChannelCostStore {
    /// Sets (replaces) the spend of a channel in a month.
    fn set_channel_cost(
        &mut self,
        tenant: &Tenant,
        channel: &Channel,
        month: Month,
        amount: Money,
    ) -> Result<()>;
    /// Every recorded spend, by channel and month.
    fn channel_costs(&mut self, tenant: &Tenant) -> Result<Vec<(Channel, Month, Money)>>;
}

/// One of a customer's ids in the merchant's sources: `unionid`, `wecom` (external_userid),
/// `oa` (official-account openid), `phone` (normalised, unmasked), a platform's buyer key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    pub value: String,
    /// What brought it: `contacts FILE`, `followers FILE`, …
    pub source: String,
    pub at: Timestamp,
}

/// Customers' identities (see DESIGN.md, "Identity"). An identity belongs to one customer:
/// the first to bring it keeps it.
pub trait IdentityStore {
    /// Records identities, each of its customer; those another customer holds already
    /// stay theirs. How many were new.
    fn add_identities(&mut self, tenant: &Tenant, ids: &[(CustomerId, Identity)]) -> Result<u64>;
    /// A customer's identities, by namespace and value.
    fn identities_of(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Vec<Identity>>;
    /// The customer holding an identity, if one does.
    fn identity_holder(
        &mut self,
        tenant: &Tenant,
        namespace: &str,
        value: &str,
    ) -> Result<Option<CustomerId>>;
    /// The merges into or of a customer, standing or undone, oldest first.
    fn merges(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Vec<MergeRecord>>;
}

/// Why two customers were merged: an identity both held, the merchant's command, or an
/// `alias` call of the batch API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeReason {
    Unionid,
    Wecom,
    Phone,
    Manual,
    Alias,
}

impl MergeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeReason::Unionid => "unionid",
            MergeReason::Wecom => "wecom",
            MergeReason::Phone => "phone",
            MergeReason::Manual => "manual",
            MergeReason::Alias => "alias",
        }
    }

    pub fn parse(s: &str) -> Option<MergeReason> {
        Some(match s {
            "unionid" => MergeReason::Unionid,
            "wecom" => MergeReason::Wecom,
            "phone" => MergeReason::Phone,
            "manual" => MergeReason::Manual,
            "alias" => MergeReason::Alias,
            _ => return None,
        })
    }

    /// The reason of a merge on an identity of this namespace, if its holders are one person.
    pub fn of_namespace(namespace: &str) -> Option<MergeReason> {
        Some(match namespace {
            "unionid" => MergeReason::Unionid,
            "wecom" => MergeReason::Wecom,
            "phone" => MergeReason::Phone,
            _ => return None,
        })
    }
}

/// A merge as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeRecord {
    pub merged_id: CustomerId,
    pub survivor_id: CustomerId,
    pub reason: MergeReason,
    pub merged_at: Timestamp,
    pub unmerged_at: Option<Timestamp>,
}

/// What a merge moved to the survivor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub orders: u64,
    pub events: u64,
    pub tags: u64,
    pub identities: u64,
    /// Customers who named the merged one as referrer and now name the survivor.
    pub referees: u64,
}

/// Merges and unmerges inside a write transaction (see DESIGN.md, "Identity"): the rows,
/// the snapshots that undo them, and the alias lookup of later writes.
pub trait MergeWrites {
    /// Merges `merged` into `survivor`: orders, events, tags, identities and referees move
    /// (each row's key noted under the merged id), the survivor takes the earlier join and
    /// its channel, blank attributes and a missing referrer from the merged one; the merged
    /// row and profile leave (kept as they were, with the survivor's, until an unmerge).
    /// Memberships and profiles are the caller's. `NotFound` if either is not a customer.
    fn merge_customers(
        &mut self,
        survivor: &CustomerId,
        merged: &CustomerId,
        reason: MergeReason,
        at: Timestamp,
    ) -> Result<Moved>;
    /// Undoes the standing merge of `merged`: both rows as they were before it, and each
    /// row noted under the merged id (moved then or arrived since) back under it. Returns
    /// the survivor. `NotFound` if `merged` is not merged; `Conflict` if a later merge
    /// into the same survivor stands (it must be undone first).
    fn unmerge_customer(&mut self, merged: &CustomerId, at: Timestamp) -> Result<CustomerId>;
    /// For each of `ids` merged into someone, the chain of customers it went into, the
    /// standing survivor last. Ids not merged are left out.
    fn merge_chains(&mut self, ids: &[CustomerId]) -> Result<Vec<(CustomerId, Vec<CustomerId>)>>;
    /// Whether the tenant has a standing merge at all (one cheap read: the write paths
    /// look up their ids only then).
    fn has_merges(&mut self) -> Result<bool>;
    /// Notes rows that arrived naming a merged id (`merged_id`, kind `order`/`event`/
    /// `identity`, key), so that an unmerge takes them back.
    fn note_merged_rows(&mut self, rows: &[(CustomerId, &str, String)]) -> Result<()>;
    /// Records that `a` and `b` are two persons; false if it was already recorded.
    fn add_never_merge(&mut self, a: &CustomerId, b: &CustomerId, at: Timestamp) -> Result<bool>;
    /// Whether `a` and `b` are recorded as two persons.
    fn is_never_merge(&mut self, a: &CustomerId, b: &CustomerId) -> Result<bool>;
    /// The merges into or of `id`, standing or undone, oldest first.
    fn merges_of(&mut self, id: &CustomerId) -> Result<Vec<MergeRecord>>;
    /// Forgets every merge of or into these customers, with what undoes them, and every
    /// never-merge pair naming them: an erasure keeps none of their ids or rows.
    fn forget_merges(&mut self, ids: &[CustomerId]) -> Result<()>;
    /// [`IdentityStore::add_identities`] inside this transaction.
    fn record_identities(&mut self, ids: &[(CustomerId, Identity)]) -> Result<u64>;
    /// Who holds each of these (namespace, value) pairs, of those held: (namespace,
    /// value, holder), in no particular order.
    fn identity_holders(
        &mut self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<(String, String, CustomerId)>>;
}

pub trait EventStore {
    /// Every event of the tenant, in event-id order.
    fn scan_events(&mut self, tenant: &Tenant, each: &mut dyn FnMut(NewEvent)) -> Result<()>;
}

/// Which customers a read covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Customers(&'a [CustomerId]),
}

pub trait ProfileStore {
    /// Every stored profile of the tenant, in customer-id order.
    fn scan_profiles(&mut self, tenant: &Tenant, each: &mut dyn FnMut(Profile)) -> Result<()>;
    /// Streams the tenant's raw facts into `sink`, each order and event borrowed from its
    /// row (no object per row): the customers, then the orders, then the events, each if
    /// `wanted` asks for them. What the reports read at a million customers: the customers
    /// in id order, the orders without whether a coupon was used (the reports count none;
    /// always false) and on SQLite in customer-id order too.
    fn stream_facts(
        &mut self,
        tenant: &Tenant,
        wanted: Facts,
        sink: &mut dyn ProfileSink,
    ) -> Result<()>;
    /// Every stored profile of the tenant, the columns stages and journeys are decided
    /// from, borrowed from the row, in no particular order; then how many customers the
    /// tenant has and the latest of their joins (every profile is of a customer, so as
    /// many profiles as customers means each has one).
    fn scan_profile_lines(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(ProfileLine<'_>),
    ) -> Result<PoolExtent>;
}

/// The reports' reads of raw facts beyond [`ProfileStore::stream_facts`].
pub trait ReportStore {
    /// The tenant's events of `kinds` alone, each borrowed from its row, in no particular
    /// order (the reports read a few kinds of the millions of interactions). No kinds, no
    /// events.
    fn stream_events_of(
        &mut self,
        tenant: &Tenant,
        kinds: &[&str],
        sink: &mut dyn ProfileSink,
    ) -> Result<()>;
    /// The tenant's events of `kind` of these customers alone (each borrowed from its
    /// row, in no particular order): a few customers' events through the index by customer
    /// instead of a scan of them all.
    fn stream_events_of_customers(
        &mut self,
        tenant: &Tenant,
        kind: &str,
        customers: &[&str],
        sink: &mut dyn ProfileSink,
    ) -> Result<()>;
    /// The latest `left` event of each customer whose stored profile has one, then how
    /// many profiles the tenant has (as many as customers means each has one).
    fn scan_left_at(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(&str, Timestamp),
    ) -> Result<u64>;
    /// Each stored profile with an interaction whose event counts count `share` events or
    /// whose latest interaction is at or after `end` (the others have no share before
    /// `end`): the customer, the latest interaction and the event counts' text (a JSON
    /// object of kind → count); then how many profiles the tenant has.
    fn scan_share_counts(
        &mut self,
        tenant: &Tenant,
        end: Timestamp,
        each: &mut dyn FnMut(&str, Timestamp, &str),
    ) -> Result<u64>;
}

/// How many customers a tenant has and when the last of them joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolExtent {
    pub customers: u64,
    pub latest_join: Option<Timestamp>,
}

/// Which raw facts [`ProfileStore::stream_facts`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub customers: bool,
    pub orders: bool,
    pub events: bool,
}

/// The stage columns of a customer's stored profile (see
/// [`ProfileStore::scan_profile_lines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLine<'a> {
    pub customer_id: &'a str,
    pub last_order_at: Option<Timestamp>,
    pub purchase_days: u32,
    pub first_purchase_day: Option<jiff::civil::Date>,
    pub last_purchase_day: Option<jiff::civil::Date>,
    pub last_interaction_at: Option<Timestamp>,
    pub left_at: Option<Timestamp>,
    /// The stored event counts, a JSON object of kind → count.
    pub event_counts: &'a str,
    pub referrals: u32,
}

/// Whose segment and tag memberships, or whose history, a read covers.
#[derive(Debug, Clone, Copy)]
pub enum MemberFilter<'a> {
    All,
    Rule(RuleKind, &'a str),
    Customer(&'a CustomerId),
}

/// A saved segment or tag rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    pub kind: RuleKind,
    pub name: String,
    /// The canonical text of the rule.
    pub rule: String,
    pub created_by: String,
    pub created_at: Timestamp,
    /// A segment's purpose (a tag rule's is always the default).
    pub purpose: Purpose,
}

/// A customer selected by a segment, rule tag or level tag, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub kind: RuleKind,
    pub name: String,
    pub customer_id: CustomerId,
    pub since: Timestamp,
}

/// A customer entering or leaving a segment, rule tag or level tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub kind: RuleKind,
    pub name: String,
    pub customer_id: CustomerId,
    pub change: Change,
}

/// A recorded change, when and on what occasion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    pub kind: RuleKind,
    pub name: String,
    pub customer_id: CustomerId,
    pub change: Change,
    pub at: Timestamp,
    pub cause: String,
}

/// A customer as the pool reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolCustomer {
    pub profile: Profile,
    pub attributes: Attributes,
    /// Manual and imported tags, in no particular order.
    pub tags: Vec<String>,
    /// Paid over the period asked for.
    pub spend: Money,
}

/// A customer's figures the day's thresholds are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFigures {
    pub last_purchase_day: Option<jiff::civil::Date>,
    pub orders: u32,
    pub net_spend: Money,
    /// Paid over the period asked for.
    pub spend: Money,
}

/// A tag given by hand or by the customers file: by whom (`manual:<who>`, `import`) and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualTag {
    pub customer_id: CustomerId,
    pub tag: String,
    pub source: String,
    pub since: Timestamp,
}

/// The kept members and the day's thresholds of a tenant, as a transaction reads and
/// writes them: the same statements on both backends (written once, in `shared.rs`).
pub trait KeptMembers {
    /// Up to `limit` customer ids with a profile, after `after` in id order: the pool in
    /// slices, for a sweep that holds the write lock a slice at a time.
    fn pool_ids_after(
        &mut self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>>;
    /// The memberships of the customers after `after` up to and including `through`.
    fn memberships_between(
        &mut self,
        after: Option<&CustomerId>,
        through: &CustomerId,
    ) -> Result<Vec<Member>>;
    /// The kept members of one rule after `after` (all from the first when `None`) up to
    /// and including `through`, in id order (byte order): what a sweep compares a slice's
    /// evaluation with, rule by rule, without reading every membership row whole.
    fn rule_members_between(
        &mut self,
        rule: (RuleKind, &str),
        after: Option<&CustomerId>,
        through: &CustomerId,
        each: &mut dyn FnMut(&str),
    ) -> Result<()>;
    /// A page of a rule's members: up to `limit` after `after`, in customer-id order.
    fn members_after(
        &mut self,
        kind: RuleKind,
        name: &str,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Member>>;
    /// How many members each rule and level tag (of one kind, if given) has now.
    fn member_counts(&mut self, kind: Option<RuleKind>) -> Result<Vec<(RuleKind, String, u64)>>;
    /// The tenant's thresholds as last computed, if ever.
    fn thresholds(&mut self) -> Result<Option<Thresholds>>;
    /// Replaces the tenant's thresholds.
    fn save_thresholds(&mut self, thresholds: &Thresholds) -> Result<()>;
}

/// What segments and tags read and write with the same statements on both backends
/// (written once, in `shared.rs`): customers' attributes, manual tags and their families,
/// the saved rules, their members and the history of that.
pub trait PoolRows {
    /// Whether the tenant has this customer.
    fn has_customer(&mut self, id: &CustomerId) -> Result<bool>;
    /// Every customer's static attributes.
    fn attributes(&mut self, each: &mut dyn FnMut(CustomerId, Attributes)) -> Result<()>;
    /// Manual and imported tags, of one customer or of all.
    fn manual_tags(&mut self, customer: Option<&CustomerId>) -> Result<Vec<ManualTag>>;
    /// The saved segments and tag rules, by kind and name.
    fn rules(&mut self) -> Result<Vec<StoredRule>>;
    /// Saves a rule, replacing one of the same kind and name.
    fn save_rule(&mut self, rule: &StoredRule) -> Result<()>;
    /// Deletes a rule and its current members (its history stays). False if there was none.
    fn delete_rule(&mut self, kind: RuleKind, name: &str) -> Result<bool>;
    /// Current members, by kind, name and customer id.
    fn members(&mut self, filter: MemberFilter<'_>) -> Result<Vec<Member>>;
    /// Tags a customer by hand; false if the customer had the tag already (it keeps its
    /// first source and time).
    fn add_tag(
        &mut self,
        customer: &CustomerId,
        tag: &str,
        source: &str,
        at: Timestamp,
    ) -> Result<bool>;
    /// Removes a manual or imported tag; false if the customer did not have it.
    fn remove_tag(&mut self, customer: &CustomerId, tag: &str) -> Result<bool>;
    /// The families set for tags, by tag.
    fn tag_families(&mut self) -> Result<Vec<(String, TagFamily)>>;
    fn set_tag_family(&mut self, tag: &str, family: TagFamily) -> Result<()>;
    /// Recorded changes, newest first, at most `limit`.
    fn history(&mut self, filter: MemberFilter<'_>, limit: usize) -> Result<Vec<HistoryRecord>>;
    /// A page of recorded changes, newest first: at most `limit` after the first `offset`.
    fn history_page(
        &mut self,
        filter: MemberFilter<'_>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>>;
    /// A rule's entries and exits recorded from `since` on, counted by quarter-hour (UTC,
    /// from the epoch): (the quarter-hour's start, entries, exits), oldest first. No
    /// quarter-hour spans a local midnight in any time zone, so days sum them exactly.
    fn history_by_quarter_hour(
        &mut self,
        kind: RuleKind,
        name: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64, u64)>>;
    /// The changes of lifecycle stage (the `stage:…` level tags) recorded from `since` on,
    /// customer by customer, each customer's oldest first.
    fn stage_history(
        &mut self,
        since: Timestamp,
        each: &mut dyn FnMut(HistoryRecord),
    ) -> Result<()>;
}

/// What segments and tags read and write, inside the one transaction of an ingest or of
/// a command that changes them: the pool as rules see it, the saved rules, who they
/// select and the history of that.
pub trait PoolTx: KeptMembers + PoolRows + DeliveryWrites {
    /// Waits until no other transaction is evaluating the tenant's rules, and keeps them
    /// out until this one ends: two evaluations at once would record the same change.
    fn lock_evaluation(&mut self) -> Result<()>;
    /// Every customer with a stored profile, in customer-id order (byte order), with their
    /// attributes, manual tags and paid amount from `spend_from` until `spend_until`.
    fn pool_customers(
        &mut self,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()>;
    /// What the day's thresholds are computed from, for every customer with a profile, in
    /// customer-id order (byte order): their id, last purchase day, orders and net spend,
    /// and what they paid over the period.
    fn pool_figures(
        &mut self,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(&str, PoolFigures),
    ) -> Result<()>;
    /// The pool as [`PoolTx::pool_customers`] reads it, of these customers only (sorted,
    /// no repeats; ids without a profile are passed over): what an evaluation of the
    /// customers a write touched reads.
    fn pool_customers_of(
        &mut self,
        ids: &[CustomerId],
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()>;
    /// The pool as [`PoolTx::pool_customers`] reads it, of the customers after `after`
    /// (all from the first when `None`) up to and including `through`, in id order: a
    /// slice of the pool read in one pass, for a sweep.
    fn pool_customers_between(
        &mut self,
        after: Option<&CustomerId>,
        through: &CustomerId,
        spend_from: Timestamp,
        spend_until: Timestamp,
        each: &mut dyn FnMut(PoolCustomer),
    ) -> Result<()>;
    /// The current memberships of these customers (sorted, no repeats), in no particular order.
    fn memberships_of(&mut self, ids: &[CustomerId]) -> Result<Vec<Member>>;
    /// Records changes of membership: members added or removed, and the history rows.
    fn apply_changes(&mut self, changes: &[MemberChange], at: Timestamp, cause: &str)
    -> Result<()>;
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Starts a transaction for segments and tags alone.
pub trait PoolStore {
    fn begin_pool<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PoolTx + 's>>;
    /// A transaction that only reads, on a snapshot of its own: it never waits for a
    /// writer, nor makes one wait. Its writing methods fail.
    fn read_pool<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PoolTx + 's>>;
}

pub trait ImportStore {
    /// Starts the one transaction an import writes in: all or nothing.
    fn begin_import<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn ImportTx + 's>>;
    /// The same for an import of about `input_bytes` of input (a file's size): the
    /// backend chooses how to write it. SQLite writes a large one, when no one else has
    /// the database open, once and straight into the file, holding it exclusively meanwhile.
    fn begin_import_of<'s>(
        &'s mut self,
        tenant: &Tenant,
        input_bytes: u64,
    ) -> Result<Box<dyn ImportTx + 's>> {
        let _ = input_bytes;
        self.begin_import(tenant)
    }
}

/// Starts the transaction of an action on a customer's personal data.
pub trait PrivacyStore {
    fn begin_privacy<'s>(&'s mut self, tenant: &Tenant) -> Result<Box<dyn PrivacyTx + 's>>;
}

/// Writes of one import or batch. Dropped without `commit` (of [`PoolTx`]), it leaves the
/// store as it was.
pub trait ImportTx: MergeTx + IngestWrites + StepWrites {}

/// A transaction that can merge customers: their rows, profiles and memberships. Both
/// [`ImportTx`] (automatic merges as identities arrive) and [`PrivacyTx`] (the commands) are.
pub trait MergeTx: PoolTx + ProfileWrites + PrivacyWrites + MergeWrites {}

/// An erasure, an opt-out or an export: the customer's data, the profile their orders
/// keep, their segments, and the audit log, in one transaction. Dropped without `commit`
/// (of [`PoolTx`]), it leaves the store as it was.
pub trait PrivacyTx: MergeTx {}

/// The rows an import or a batch brings: customers, orders, events and message ids.
/// A batch must not hold the same key twice (the caller splits such batches).
pub trait IngestWrites {
    /// Upserts customers; absent attributes keep what is stored; tags are added.
    fn upsert_customers(&mut self, batch: &[NewCustomer], now: Timestamp) -> Result<WriteCounts>;
    /// Creates customers first seen through an order or event (joined then), or moves an
    /// inferred join earlier. Returns how many were created.
    fn see_customers(&mut self, batch: &[SeenCustomer]) -> Result<u64>;
    /// Upserts orders by order id: new ones inserted, changed ones updated.
    fn upsert_orders(&mut self, batch: &[NewOrder]) -> Result<WriteCounts>;
    /// Inserts events; an event id seen before is left alone (`unchanged`).
    fn insert_events(&mut self, batch: &[NewEvent]) -> Result<WriteCounts>;
    /// Claims message ids for this tenant: true for each id seen for the first time (now
    /// recorded), false for a duplicate: an id claimed before, or the id of a stored event
    /// (a track item's message id is its event's id, see `claim_event_ids`).
    fn claim_messages(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>>;
    /// Claims the message ids of track items, which are the ids of the events this
    /// transaction inserts next: true for each id neither claimed before nor a stored
    /// event's, false for a duplicate. The event's row is the claim (SQLite writes the id
    /// nowhere else), so every true must be followed by that event's insert.
    fn claim_event_ids(&mut self, ids: &[&str], now: Timestamp) -> Result<Vec<bool>>;
    /// Customers created by `see_customers` in this transaction so far (each once; taken).
    /// They had no orders or events before it.
    fn created_customers(&mut self) -> Result<Vec<CustomerId>>;
    /// Customers who lost an order to another customer in this transaction so far (an
    /// order re-imported under a new customer id): their profiles change too.
    fn displaced_customers(&mut self) -> Result<Vec<CustomerId>>;
}

/// Profiles kept current inside a write transaction: the facts they are built from, read
/// as the transaction sees them, and the figures written back.
pub trait ProfileWrites {
    /// Some or all customers, as this transaction sees them.
    fn customer_facts(&mut self, scope: Scope<'_>) -> Result<Vec<CustomerFact>>;
    /// Streams the raw facts of some or all customers, as this transaction sees them, into
    /// `sink`: the customers first, then orders and events (possibly of other customers
    /// too, which the sink ignores).
    fn profile_facts(&mut self, scope: Scope<'_>, sink: &mut dyn ProfileSink) -> Result<()>;
    /// For each customer naming one of `referrers` as their referrer: (referrer, the
    /// customer's stored net spend).
    fn referees(&mut self, referrers: Scope<'_>) -> Result<Vec<(CustomerId, Money)>>;
    /// The stored profiles of these customers (those that have one), in id order.
    fn profiles_of(&mut self, ids: &[CustomerId]) -> Result<Vec<Profile>>;
    /// Writes the own figures of these profiles (not the referral figures).
    fn save_profiles(&mut self, profiles: &[Profile]) -> Result<()>;
    /// Writes the profiles of customers this transaction created (none is stored yet):
    /// what [`ProfileWrites::save_profiles`] does, which a backend may do faster.
    fn save_new_profiles(&mut self, profiles: &[Profile]) -> Result<()> {
        self.save_profiles(profiles)
    }
    /// Adds customers' new interactions to their stored profiles, as
    /// [`Interactions::apply_to`] does; per entry, whether the customer had a stored
    /// profile (one without is left alone). A backend may do it in place, without reading
    /// the profiles out.
    fn add_interactions(&mut self, news: &[Interactions]) -> Result<Vec<bool>> {
        let ids: Vec<CustomerId> = news.iter().map(|n| n.customer_id.clone()).collect();
        let mut stored: std::collections::HashMap<CustomerId, Profile> = self
            .profiles_of(&ids)?
            .into_iter()
            .map(|p| (p.customer_id.clone(), p))
            .collect();
        let found = news
            .iter()
            .map(|n| {
                stored
                    .get_mut(&n.customer_id)
                    .map(|p| n.apply_to(p))
                    .is_some()
            })
            .collect();
        let profiles: Vec<Profile> = stored.into_values().collect();
        self.save_profiles(&profiles)?;
        Ok(found)
    }
    /// Writes referral figures: (customer, referrals, their revenue).
    fn save_referrals(&mut self, figures: &[(CustomerId, u32, Money)]) -> Result<()>;
}

/// Personal data on request: erasure, the marketing opt-out, the audit log, and the
/// suppression keys that keep erased ids out of later imports.
pub trait PrivacyWrites {
    /// The suppression keys of the tenant's erased customers.
    fn suppression_keys(&mut self) -> Result<Vec<String>>;
    /// Erases a customer: their personal attributes, tags, events, memberships and
    /// history go; their customer row (channel, join time and referrer only), orders and
    /// profile are kept under `remains`, opted out; customers they referred name `remains`
    /// instead; `key` is suppressed from now on. `NotFound` if the tenant has no such
    /// customer. No old version of the erased rows stays in the backend's own log once
    /// the transaction has ended, as far as the backend can see to it (SQLite empties its
    /// log unless another connection is reading it; PostgreSQL's are recycled with its WAL).
    fn erase_customer(
        &mut self,
        id: &CustomerId,
        remains: &CustomerId,
        key: &str,
        at: Timestamp,
    ) -> Result<Erased>;
    /// Adds a suppression key (of another id or an identity of an erased customer).
    fn suppress(&mut self, key: &str, at: Timestamp) -> Result<()>;
    /// Sets (`Some`) or clears (`None`) a customer's marketing opt-out. False if the
    /// tenant has no such customer.
    fn set_opt_out(&mut self, id: &CustomerId, at: Option<Timestamp>) -> Result<bool>;
    /// Appends to the audit log.
    fn record_audit(&mut self, entry: &AuditEntry) -> Result<()>;
}

/// What an erasure removed or moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Orders kept, now under the remains' id.
    pub orders: u64,
    pub events: u64,
    pub tags: u64,
    /// Customers who named the erased customer as their referrer.
    pub referees: u64,
}

/// An action on a customer's personal data: who did it, when, to whom (the customer's
/// suppression key, never their id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    pub subject: String,
    pub detail: String,
}

/// The audit log, read.
pub trait AuditStore {
    /// Entries newest first, of one subject or of all, at most `limit`.
    fn audit_log(
        &mut self,
        tenant: &Tenant,
        subject: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>>;
}

pub trait Store:
    ReportStore
    + TenantStore
    + CustomerStore
    + OrderStore
    + EventStore
    + ProfileStore
    + ImportStore
    + PrivacyStore
    + PoolStore
    + ChannelCostStore
    + IdentityStore
    + TokenStore
    + ConsoleStore
    + CustomerViewStore
    + AuditStore
    + CampaignStore
    + DeliveryStore
    + Send
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Whether the database answers: one trivial read, no lock taken.
    fn ping(&mut self) -> Result<()>;
    /// Applies pending migrations; a no-op when up to date. Returns how many were applied.
    fn migrate(&mut self) -> Result<usize>;
    fn table_counts(&mut self, tenant: &Tenant) -> Result<TableCounts>;
    /// Makes this connection a server's writer, whose commits are answered to clients and
    /// come without pause: every commit is on disk when it returns, so that it survives a
    /// power loss, not only a crash of the process; and the backend keeps its log in hand
    /// meanwhile (SQLite copies it back on a thread of the store's own, stopped when the
    /// store is dropped, so that commits never wait for it). PostgreSQL's default
    /// (`synchronous_commit = on`) is durable already and its server keeps its own log.
    fn serve_writes(&mut self) -> Result<()>;
    /// For a connection of [`Store::serve_writes`], between two of its transactions: the
    /// upkeep of the backend's log that must not wait (SQLite starts its log again every
    /// few seconds, so that it does not grow without end under continual writes).
    fn after_writes(&mut self) -> Result<()> {
        Ok(())
    }
    /// For a connection of [`Store::serve_writes`] that has had nothing to write for a
    /// while: the upkeep that waits for a pause (SQLite empties its log, which a burst of
    /// writes would otherwise leave its size on disk).
    fn when_idle(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Opens (and migrates) the store at `location`: a `postgres://` or `postgresql://` URL
/// selects PostgreSQL, anything else is a SQLite file path (`:memory:` for a throwaway).
pub fn open(location: &str) -> Result<Box<dyn Store>> {
    let mut store: Box<dyn Store> =
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            Box::new(PgStore::connect(location)?)
        } else {
            Box::new(SqliteStore::open(location)?)
        };
    store.migrate()?;
    Ok(store)
}

/// Microseconds since the epoch, the stored form of an instant.
pub(crate) fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

pub(crate) fn from_micros(us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(other)
}

pub(crate) fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(e))
}

/// A stored value that breaks the schema's own rules: corruption or a foreign writer.
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Other(what.into().into())
}

/// A stored rule kind, read back.
pub(crate) fn stored_kind(s: &str) -> Result<RuleKind> {
    RuleKind::parse(s).ok_or_else(|| corrupt(format!("stored rule kind '{s}'")))
}

/// A stored segment purpose, read back.
pub(crate) fn stored_purpose(s: &str) -> Result<Purpose> {
    Purpose::parse(s).ok_or_else(|| corrupt(format!("stored purpose '{s}'")))
}

/// A stored membership change, read back.
pub(crate) fn stored_change(s: &str) -> Result<Change> {
    Change::parse(s).ok_or_else(|| corrupt(format!("stored change '{s}'")))
}
