//! What both backends do alike, written once over [`Db`]: tenants and their settings,
//! customers and the scans of their rows, channel costs, API tokens, one customer's view
//! and pages of customers, the audit log; and in a transaction the privacy writes, the
//! kept members and thresholds, rules, tags and history. A backend provides its
//! connection ([`OnDb`]) or its transaction ([`TxOnDb`]) and gets these traits.

use siyu_core::access::Role;
use siyu_core::metrics::cohorts::Month;
use siyu_core::profile::CustomerRow;
use siyu_core::segment::pool::{Attributes, Thresholds};
use siyu_core::segment::rules::{RuleKind, TagFamily};
use siyu_core::{
    Channel, Customer, CustomerFact, CustomerId, Money, NewEvent, TenantZone, Timestamp,
};

use crate::sql::{
    ATTRIBUTES, Arg, BUMP_CHANGES, CHANGES_OF, COUNT_PROFILES, CUSTOMER_BY_ID, CUSTOMERS_PAGE,
    DELETE_RULE, DELETE_RULE_MEMBERS, DELETE_TAG, Db, ERASE_CUSTOMER, ERASE_ORDERS, ERASE_PROFILE,
    ERASE_REFERRER, ERASED_TABLES, HAS_CUSTOMER, IDENTITIES_OF, IDENTITY_HOLDER, INSERT_AUDIT,
    INSERT_CONSOLE_USER, INSERT_SUPPRESSION, INSERT_TAG, INSERT_TENANT, INSERT_TOKEN,
    MEMBER_COUNTS, MEMBERS_AFTER, MEMBERSHIPS_BETWEEN, POOL_EXTENT, POOL_IDS_AFTER,
    QUARTER_HOUR_MICROS, RECENT_EVENTS, RECENT_ORDERS, RULE_MEMBERS_BETWEEN, RULES_OF, RowAccess,
    SAVE_RULE, SAVE_THRESHOLDS, SCAN_EVENTS, SCAN_LEFT_AT, SCAN_PROFILE_LINES, SCAN_SHARE_COUNTS,
    SET_CHANNEL_COST, SET_OPT_OUT, SET_SETTING, SET_TAG_FAMILY, SET_TIME_ZONE, SETTINGS_OF,
    STREAM_EVENTS, SUPPRESSION_KEYS, TABLE_COUNTS, TAG_FAMILIES, TENANT_BY_NAME, THRESHOLDS_OF,
    TOKEN_BY_HASH, TOKENS_OF, attributes_from, audit_entry_from, audit_log_sql, channel_cost_from,
    channel_costs_sql, console_session_by_hash, console_user_by_name, console_user_from,
    console_users_of, customer_fact_from, customer_facts_sql, customer_from, customer_line_from,
    erase_from, event_from, event_line_into, history_buckets_sql, history_from, history_sql,
    manual_tag_from, manual_tags_sql, member_count_from, member_filter, member_from, members_sql,
    order_from, order_line_into, parse_customer_id, pool_extent_from, profile_from,
    profile_line_from, profile_of, profiles_sql, report_orders_sql, rows, stage_history_sql,
    stored_rule_from, tag_family_from, tenant_from, tenants_sql, thresholds_from,
    thresholds_values, token_from,
};
use crate::{
    AuditEntry, AuditStore, ChannelCostStore, ConsoleSession, ConsoleStore, ConsoleUser,
    CustomerLine, CustomerStore, CustomerView, CustomerViewStore, Erased, EventStore, Facts,
    HistoryRecord, Identity, IdentityStore, ManualTag, Member, MemberFilter, PoolExtent,
    PrivacyWrites, ProfileLine, ProfileStore, Result, StoreError, StoredRule, StoredToken,
    TableCounts, Tenant, TenantStore, TokenStore, corrupt, from_micros, micros, stored_change,
};

/// A store whose reads and simple writes run on one connection.
pub(crate) trait OnDb {
    fn db(&mut self) -> &mut dyn Db;
}

/// A write transaction of one tenant.
pub(crate) trait TxOnDb {
    fn tx_db(&mut self) -> &mut dyn Db;
    fn tenant_id(&self) -> i64;
    /// Before `id` is erased (its rows going on under `remains`): what the backend must
    /// do first or afterwards (SQLite: forget them, rebuild deferred indexes, and empty
    /// its log once the transaction has ended).
    fn erasing(&mut self, id: &CustomerId, remains: &CustomerId) -> Result<()>;
    /// Before these customers' rows are rewritten other than by an import (a merge or
    /// an unmerge): what the backend must do first (SQLite: forget them and rebuild
    /// deferred indexes).
    fn rewriting(&mut self, ids: &[&CustomerId]) -> Result<()>;
}

/// A customer and when they opted out of marketing, if they did; `NotFound` if unknown.
pub(crate) fn customer_row(
    db: &mut dyn Db,
    tenant: &Tenant,
    id: &CustomerId,
) -> Result<(Customer, Option<Timestamp>)> {
    rows(
        db,
        CUSTOMER_BY_ID,
        &[Arg::Int(tenant.id), Arg::Text(id.as_str())],
        |r| customer_from(id, r),
    )?
    .pop()
    .ok_or_else(|| StoreError::NotFound(format!("customer {id}")))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// How many rows the tenant has in each table.
pub(crate) fn table_counts(db: &mut dyn Db, tenant: &Tenant) -> Result<TableCounts> {
    let counts = rows(db, TABLE_COUNTS, &[Arg::Int(tenant.id)], |r| {
        let count = |i| u64::try_from(r.int(i)?).map_err(|_| corrupt("a negative count"));
        Ok(TableCounts {
            customers: count(0)?,
            orders: count(1)?,
            events: count(2)?,
            tags: count(3)?,
        })
    })?;
    counts
        .into_iter()
        .next()
        .ok_or_else(|| corrupt("no row of counts"))
}

/// Hands each of a tenant's rows of `sql` (the tenant its `?1`), decoded, to `each` as
/// they come.
pub(crate) fn scan<R>(
    db: &mut dyn Db,
    sql: &str,
    tenant: &Tenant,
    decode: impl Fn(&dyn RowAccess) -> Result<R>,
    each: &mut dyn FnMut(R),
) -> Result<()> {
    db.each_row(sql, &[Arg::Int(tenant.id)], &mut |r| {
        each(decode(r)?);
        Ok(())
    })
}

impl<T: OnDb> CustomerStore for T {
    fn customer(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Customer> {
        Ok(customer_row(self.db(), tenant, id)?.0)
    }

    fn customer_tags(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Vec<String>> {
        let key = [Arg::Int(tenant.id), Arg::Text(id.as_str())];
        rows(self.db(), manual_tags_sql(true), &key, |r| {
            Ok(r.text(0)?.to_owned())
        })
    }

    fn scan_customers(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(CustomerFact),
    ) -> Result<()> {
        let decode = |r: &dyn RowAccess| customer_fact_from(r);
        let sql = customer_facts_sql("ORDER BY customer_id");
        scan(self.db(), &sql, tenant, decode, each)
    }

    fn scan_birthdays(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(CustomerId, jiff::civil::Date),
    ) -> Result<()> {
        let decode = |r: &dyn RowAccess| {
            let id = CustomerId::parse(r.text(0)?).map_err(|e| corrupt(e.to_string()))?;
            let day = r
                .text(1)?
                .parse::<jiff::civil::Date>()
                .map_err(|e| corrupt(format!("customer {id}'s birthday: {e}")))?;
            Ok((id, day))
        };
        scan(
            self.db(),
            "SELECT customer_id, birthday FROM customers
             WHERE tenant_id = ?1 AND birthday IS NOT NULL ORDER BY customer_id",
            tenant,
            decode,
            &mut |(id, day)| each(id, day),
        )
    }
}

impl<T: OnDb> EventStore for T {
    fn scan_events(&mut self, tenant: &Tenant, each: &mut dyn FnMut(NewEvent)) -> Result<()> {
        scan(self.db(), SCAN_EVENTS, tenant, |r| event_from(r), each)
    }
}

impl<T: OnDb> TenantStore for T {
    fn tenant(&mut self, name: &str) -> Result<Tenant> {
        let db = self.db();
        let by_name = |db: &mut dyn Db| -> Result<Option<Tenant>> {
            Ok(rows(db, TENANT_BY_NAME, &[Arg::Text(name)], |r| tenant_from(r))?.pop())
        };
        if let Some(tenant) = by_name(db)? {
            return Ok(tenant);
        }
        // A concurrent creator makes this insert wait for its commit and then do nothing;
        // the select after it (a new snapshot) sees the row either way.
        let now = micros(Timestamp::now());
        db.exec(INSERT_TENANT, &[Arg::Text(name), Arg::Int(now)])?;
        by_name(db)?.ok_or_else(|| StoreError::NotFound(format!("tenant {name}")))
    }

    fn tenants(&mut self) -> Result<Vec<Tenant>> {
        let db = self.db();
        let sql = tenants_sql(db.dialect());
        rows(db, &sql, &[], |r| tenant_from(r))
    }

    fn settings(&mut self, tenant: &Tenant) -> Result<Vec<(String, String)>> {
        rows(self.db(), SETTINGS_OF, &[Arg::Int(tenant.id)], |r| {
            Ok((r.text(0)?.to_owned(), r.text(1)?.to_owned()))
        })
    }

    fn set_setting(&mut self, tenant: &Tenant, key: &str, value: &str) -> Result<()> {
        let args = [
            Arg::Int(tenant.id),
            Arg::Text(key),
            Arg::Text(value),
            Arg::Int(micros(Timestamp::now())),
        ];
        self.db().exec(SET_SETTING, &args)?;
        bump_changes(self.db(), tenant.id)
    }

    fn set_time_zone(&mut self, tenant: &Tenant, zone: &TenantZone) -> Result<()> {
        let args = [Arg::Int(tenant.id), Arg::Text(zone.name())];
        self.db().exec(SET_TIME_ZONE, &args)?;
        bump_changes(self.db(), tenant.id)
    }

    fn changes(&mut self, tenant: &Tenant) -> Result<i64> {
        let mut n = rows(self.db(), CHANGES_OF, &[Arg::Int(tenant.id)], |r| r.int(0))?;
        Ok(n.pop().unwrap_or(0))
    }
}

/// Moves the tenant's change counter: last in a write transaction, or after a write on
/// its own (never before it: a figure read between would be kept as current).
pub(crate) fn bump_changes(db: &mut dyn Db, tenant: i64) -> Result<()> {
    db.exec(BUMP_CHANGES, &[Arg::Int(tenant)])?;
    Ok(())
}

impl<T: OnDb> ChannelCostStore for T {
    fn set_channel_cost(
        &mut self,
        tenant: &Tenant,
        channel: &Channel,
        month: Month,
        amount: Money,
    ) -> Result<()> {
        let month = month.to_string();
        let args = [
            Arg::Int(tenant.id),
            Arg::Text(channel.as_str()),
            Arg::Text(&month),
            Arg::Int(amount.fen()),
        ];
        self.db().exec(SET_CHANNEL_COST, &args)?;
        bump_changes(self.db(), tenant.id)
    }

    fn channel_costs(&mut self, tenant: &Tenant) -> Result<Vec<(Channel, Month, Money)>> {
        let db = self.db();
        let sql = channel_costs_sql(db.dialect());
        rows(db, &sql, &[Arg::Int(tenant.id)], |r| channel_cost_from(r))
    }
}

/// Identities written per statement.
const IDENTITIES_PER_STATEMENT: usize = 1_000;

/// Records identities of a tenant's customers; those another customer holds stay theirs.
pub(crate) fn add_identities(
    db: &mut dyn Db,
    tenant: i64,
    ids: &[(CustomerId, Identity)],
) -> Result<u64> {
    let mut added = 0;
    for chunk in ids.chunks(IDENTITIES_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO identities (tenant_id, namespace, value, customer_id, source, created_at) VALUES ",
        );
        let times: Vec<i64> = chunk.iter().map(|(_, i)| micros(i.at)).collect();
        let mut args = vec![Arg::Int(tenant)];
        for (k, ((customer, identity), at)) in chunk.iter().zip(&times).enumerate() {
            let n = 2 + k * 5;
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?1, ?{}, ?{}, ?{}, ?{}, ?{})",
                n,
                n + 1,
                n + 2,
                n + 3,
                n + 4
            ));
            args.extend([
                Arg::Text(&identity.namespace),
                Arg::Text(&identity.value),
                Arg::Text(customer.as_str()),
                Arg::Text(&identity.source),
                Arg::Int(*at),
            ]);
        }
        sql.push_str(" ON CONFLICT (tenant_id, namespace, value) DO NOTHING");
        added += db.exec(&sql, &args)?;
    }
    Ok(added)
}

impl<T: OnDb> IdentityStore for T {
    fn add_identities(&mut self, tenant: &Tenant, ids: &[(CustomerId, Identity)]) -> Result<u64> {
        let added = add_identities(self.db(), tenant.id, ids)?;
        bump_changes(self.db(), tenant.id)?;
        Ok(added)
    }

    fn identities_of(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Vec<Identity>> {
        let args = [Arg::Int(tenant.id), Arg::Text(id.as_str())];
        rows(self.db(), IDENTITIES_OF, &args, |r| {
            Ok(Identity {
                namespace: r.text(0)?.to_owned(),
                value: r.text(1)?.to_owned(),
                source: r.text(2)?.to_owned(),
                at: from_micros(r.int(3)?)?,
            })
        })
    }

    fn identity_holder(
        &mut self,
        tenant: &Tenant,
        namespace: &str,
        value: &str,
    ) -> Result<Option<CustomerId>> {
        let args = [Arg::Int(tenant.id), Arg::Text(namespace), Arg::Text(value)];
        Ok(rows(self.db(), IDENTITY_HOLDER, &args, |r| {
            parse_customer_id(r.text(0)?)
        })?
        .pop())
    }

    fn merges(&mut self, tenant: &Tenant, id: &CustomerId) -> Result<Vec<crate::MergeRecord>> {
        crate::merge::merges_of(self.db(), tenant.id, id)
    }
}

impl<T: OnDb> AuditStore for T {
    fn audit_log(
        &mut self,
        tenant: &Tenant,
        subject: Option<&str>,
        n: usize,
    ) -> Result<Vec<AuditEntry>> {
        let db = self.db();
        let sql = audit_log_sql(db.dialect());
        let args = [
            Arg::Int(tenant.id),
            Arg::OptText(subject),
            Arg::Int(limit(n)),
        ];
        rows(db, &sql, &args, |r| audit_entry_from(r))
    }
}

impl<T: OnDb> TokenStore for T {
    fn create_token(
        &mut self,
        tenant: &Tenant,
        hash: &str,
        role: Role,
        label: &str,
        now: Timestamp,
    ) -> Result<()> {
        let args = [
            Arg::Text(hash),
            Arg::Int(tenant.id),
            Arg::Text(role.as_str()),
            Arg::Text(label),
            Arg::Int(micros(now)),
        ];
        self.db().exec(INSERT_TOKEN, &args)?;
        Ok(())
    }

    fn token(&mut self, hash: &str) -> Result<Option<StoredToken>> {
        Ok(rows(self.db(), TOKEN_BY_HASH, &[Arg::Text(hash)], |r| {
            token_from(r)
        })?
        .pop())
    }

    fn tokens(&mut self, tenant: &Tenant) -> Result<Vec<StoredToken>> {
        rows(self.db(), TOKENS_OF, &[Arg::Int(tenant.id)], |r| {
            token_from(r)
        })
    }

    fn revoke_token(&mut self, tenant: &Tenant, hash_prefix: &str, now: Timestamp) -> Result<bool> {
        if hash_prefix.len() < 8 || !hash_prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let prefix = hash_prefix.to_ascii_lowercase();
        let n = self.db().exec(
            "UPDATE api_tokens SET revoked_at = ?3
             WHERE tenant_id = ?1 AND substr(token_hash, 1, length(?2)) = ?2
               AND revoked_at IS NULL",
            &[
                Arg::Int(tenant.id),
                Arg::Text(&prefix),
                Arg::Int(micros(now)),
            ],
        )?;
        Ok(n > 0)
    }
}

impl<T: OnDb> ConsoleStore for T {
    fn create_user(
        &mut self,
        tenant: &Tenant,
        name: &str,
        role: Role,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let args = [
            Arg::Int(tenant.id),
            Arg::Text(name),
            Arg::Text(role.as_str()),
            Arg::Text(password_hash),
            Arg::Int(micros(now)),
        ];
        Ok(self.db().exec(INSERT_CONSOLE_USER, &args)? > 0)
    }

    fn console_user(&mut self, tenant: &Tenant, name: &str) -> Result<Option<ConsoleUser>> {
        let args = [Arg::Int(tenant.id), Arg::Text(name)];
        Ok(rows(self.db(), &console_user_by_name(), &args, |r| {
            console_user_from(r)
        })?
        .pop())
    }

    fn console_users(&mut self, tenant: &Tenant) -> Result<Vec<ConsoleUser>> {
        rows(
            self.db(),
            &console_users_of(),
            &[Arg::Int(tenant.id)],
            |r| console_user_from(r),
        )
    }

    fn delete_user(&mut self, tenant: &Tenant, name: &str) -> Result<bool> {
        let args = [Arg::Int(tenant.id), Arg::Text(name)];
        let db = self.db();
        db.exec(
            "DELETE FROM console_sessions WHERE tenant_id = ?1 AND user_name = ?2",
            &args,
        )?;
        Ok(db.exec(
            "DELETE FROM console_users WHERE tenant_id = ?1 AND name = ?2",
            &args,
        )? > 0)
    }

    fn set_password(&mut self, tenant: &Tenant, name: &str, password_hash: &str) -> Result<bool> {
        let db = self.db();
        let changed = db.exec(
            "UPDATE console_users SET password_hash = ?3, failures = 0, locked_until = 0
             WHERE tenant_id = ?1 AND name = ?2",
            &[
                Arg::Int(tenant.id),
                Arg::Text(name),
                Arg::Text(password_hash),
            ],
        )?;
        db.exec(
            "DELETE FROM console_sessions WHERE tenant_id = ?1 AND user_name = ?2",
            &[Arg::Int(tenant.id), Arg::Text(name)],
        )?;
        Ok(changed > 0)
    }

    fn record_sign_in(
        &mut self,
        tenant: &Tenant,
        name: &str,
        failures: u32,
        locked_until: Option<Timestamp>,
    ) -> Result<()> {
        self.db().exec(
            "UPDATE console_users SET failures = ?3, locked_until = ?4
             WHERE tenant_id = ?1 AND name = ?2",
            &[
                Arg::Int(tenant.id),
                Arg::Text(name),
                Arg::Int(i64::from(failures)),
                Arg::Int(locked_until.map_or(0, micros)),
            ],
        )?;
        Ok(())
    }

    fn create_session(
        &mut self,
        tenant: &Tenant,
        user: &str,
        session_hash: &str,
        csrf: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        self.db().exec(
            "INSERT INTO console_sessions
                (session_hash, tenant_id, user_name, csrf, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                Arg::Text(session_hash),
                Arg::Int(tenant.id),
                Arg::Text(user),
                Arg::Text(csrf),
                Arg::Int(micros(now)),
                Arg::Int(micros(expires_at)),
            ],
        )?;
        Ok(())
    }

    fn session(&mut self, session_hash: &str, now: Timestamp) -> Result<Option<ConsoleSession>> {
        let args = [Arg::Text(session_hash), Arg::Int(micros(now))];
        Ok(rows(self.db(), &console_session_by_hash(), &args, |r| {
            Ok(ConsoleSession {
                user: console_user_from(r)?,
                csrf: r.text(9)?.to_owned(),
                expires_at: from_micros(r.int(10)?)?,
            })
        })?
        .pop())
    }

    fn search_customers(
        &mut self,
        tenant: &Tenant,
        text: &str,
        limit: usize,
    ) -> Result<Vec<CustomerLine>> {
        // The name's prefix as a LIKE pattern, its own % and _ taken literally.
        let mut prefix = String::with_capacity(text.len() + 1);
        for c in text.chars() {
            if matches!(c, '%' | '_' | '\\') {
                prefix.push('\\');
            }
            prefix.push(c);
        }
        prefix.push('%');
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let args = [
            Arg::Int(tenant.id),
            Arg::Text(text),
            Arg::Text(&prefix),
            Arg::Int(limit),
        ];
        rows(
            self.db(),
            "SELECT c.customer_id, c.channel, c.joined_at, coalesce(p.orders, 0),
                    coalesce(p.net_spend, 0), p.last_order_at
             FROM customers c
             LEFT JOIN profiles p ON p.tenant_id = c.tenant_id AND p.customer_id = c.customer_id
             WHERE c.tenant_id = ?1
               AND (c.customer_id = ?2 OR c.phone = ?2 OR c.name LIKE ?3 ESCAPE '\\')
             ORDER BY c.customer_id LIMIT ?4",
            &args,
            |r| customer_line_from(r),
        )
    }

    fn end_session(&mut self, session_hash: &str, now: Timestamp) -> Result<()> {
        let db = self.db();
        db.exec(
            "DELETE FROM console_sessions WHERE session_hash = ?1",
            &[Arg::Text(session_hash)],
        )?;
        db.exec(
            "DELETE FROM console_sessions WHERE expires_at <= ?1",
            &[Arg::Int(micros(now))],
        )?;
        Ok(())
    }
}

impl<T: OnDb> CustomerViewStore for T {
    fn customer_view(
        &mut self,
        tenant: &Tenant,
        id: &CustomerId,
        recent: usize,
    ) -> Result<Option<CustomerView>> {
        let db = self.db();
        let (customer, opted_out_at) = match customer_row(db, tenant, id) {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let limit = i64::try_from(recent).unwrap_or(i64::MAX);
        // Read without a transaction: on SQLite an immediate one would wait for every writer.
        let key = [Arg::Int(tenant.id), Arg::Text(id.as_str())];
        let recent_key = [key[0], key[1], Arg::Int(limit)];
        let profile = rows(db, &profile_of(), &key, |r| profile_from(r))?.pop();
        let recent_orders = rows(db, RECENT_ORDERS, &recent_key, |r| order_from(r))?;
        let recent_events = rows(db, RECENT_EVENTS, &recent_key, |r| event_from(r))?;
        let manual_tags = rows(db, manual_tags_sql(true), &key, |r| manual_tag_from(r))?;
        let (clause, args) = member_filter(tenant.id, MemberFilter::Customer(id));
        let memberships = rows(db, &members_sql(clause), &args, |r| member_from(r))?;
        Ok(Some(CustomerView {
            customer,
            profile,
            recent_orders,
            recent_events,
            manual_tags,
            memberships,
            opted_out_at,
        }))
    }

    fn customers_page(
        &mut self,
        tenant: &Tenant,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerLine>> {
        let after = after.map_or("", CustomerId::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let args = [Arg::Int(tenant.id), Arg::Text(after), Arg::Int(limit)];
        rows(self.db(), CUSTOMERS_PAGE, &args, |r| customer_line_from(r))
    }
}

impl<T: TxOnDb> PrivacyWrites for T {
    fn suppression_keys(&mut self) -> Result<Vec<String>> {
        let tenant = self.tenant_id();
        rows(self.tx_db(), SUPPRESSION_KEYS, &[Arg::Int(tenant)], |r| {
            Ok(r.text(0)?.to_owned())
        })
    }

    fn erase_customer(
        &mut self,
        id: &CustomerId,
        remains: &CustomerId,
        key: &str,
        at: Timestamp,
    ) -> Result<Erased> {
        self.erasing(id, remains)?;
        let tenant = Arg::Int(self.tenant_id());
        let who = id.as_str();
        let (id, remains, at) = (Arg::Text(who), Arg::Text(remains.as_str()), micros(at));
        let tx = self.tx_db();
        let kept = tx.exec(ERASE_CUSTOMER, &[tenant, id, remains, Arg::Int(at)])?;
        if kept == 0 {
            return Err(StoreError::NotFound(format!("customer {who}")));
        }
        let orders = tx.exec(ERASE_ORDERS, &[tenant, id, remains])?;
        tx.exec(ERASE_PROFILE, &[tenant, id, remains])?;
        let referees = tx.exec(ERASE_REFERRER, &[tenant, id, remains])?;
        let mut deleted = [0; ERASED_TABLES.len()];
        for (n, table) in deleted.iter_mut().zip(ERASED_TABLES) {
            *n = tx.exec(&erase_from(table), &[tenant, id])?;
        }
        let [events, tags, _, _, _] = deleted;
        // Campaigns keep their decisions and coupons (the results count them) under the
        // remains' id, as the orders.
        for table in ["campaign_decisions", "coupons"] {
            tx.exec(
                &format!(
                    "UPDATE {table} SET customer_id = ?3 WHERE tenant_id = ?1 AND customer_id = ?2"
                ),
                &[tenant, id, remains],
            )?;
        }
        tx.exec(INSERT_SUPPRESSION, &[tenant, Arg::Text(key), Arg::Int(at)])?;
        Ok(Erased {
            orders,
            events,
            tags,
            referees,
        })
    }

    fn suppress(&mut self, key: &str, at: Timestamp) -> Result<()> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(key),
            Arg::Int(micros(at)),
        ];
        self.tx_db().exec(INSERT_SUPPRESSION, &args)?;
        Ok(())
    }

    fn set_opt_out(&mut self, id: &CustomerId, at: Option<Timestamp>) -> Result<bool> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(id.as_str()),
            Arg::OptInt(at.map(micros)),
        ];
        Ok(self.tx_db().exec(SET_OPT_OUT, &args)? > 0)
    }

    fn record_audit(&mut self, e: &AuditEntry) -> Result<()> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Int(micros(e.at)),
            Arg::Text(&e.actor),
            Arg::Text(e.action.as_str()),
            Arg::Text(&e.subject),
            Arg::Text(&e.detail),
        ];
        self.tx_db().exec(INSERT_AUDIT, &args)?;
        Ok(())
    }
}

// ---- the pool's kept members and thresholds, its rules, tags and history ------------

fn after(id: Option<&CustomerId>) -> &str {
    id.map_or("", CustomerId::as_str)
}

impl<T: TxOnDb> crate::KeptMembers for T {
    fn pool_ids_after(&mut self, from: Option<&CustomerId>, n: usize) -> Result<Vec<CustomerId>> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(after(from)),
            Arg::Int(limit(n)),
        ];
        rows(self.tx_db(), POOL_IDS_AFTER, &args, |r| {
            parse_customer_id(r.text(0)?)
        })
    }

    fn rule_members_between(
        &mut self,
        (kind, name): (RuleKind, &str),
        from: Option<&CustomerId>,
        through: &CustomerId,
        each: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(kind.as_str()),
            Arg::Text(name),
            Arg::Text(after(from)),
            Arg::Text(through.as_str()),
        ];
        self.tx_db()
            .each_row(RULE_MEMBERS_BETWEEN, &args, &mut |r| {
                each(r.text(0)?);
                Ok(())
            })
    }

    fn memberships_between(
        &mut self,
        from: Option<&CustomerId>,
        through: &CustomerId,
    ) -> Result<Vec<Member>> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(after(from)),
            Arg::Text(through.as_str()),
        ];
        rows(self.tx_db(), MEMBERSHIPS_BETWEEN, &args, |r| member_from(r))
    }

    fn members_after(
        &mut self,
        kind: RuleKind,
        name: &str,
        from: Option<&CustomerId>,
        n: usize,
    ) -> Result<Vec<Member>> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(kind.as_str()),
            Arg::Text(name),
            Arg::Text(after(from)),
            Arg::Int(limit(n)),
        ];
        rows(self.tx_db(), MEMBERS_AFTER, &args, |r| member_from(r))
    }

    fn member_counts(&mut self, kind: Option<RuleKind>) -> Result<Vec<(RuleKind, String, u64)>> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(kind.map_or("", RuleKind::as_str)),
        ];
        rows(self.tx_db(), MEMBER_COUNTS, &args, |r| member_count_from(r))
    }

    fn thresholds(&mut self) -> Result<Option<Thresholds>> {
        let tenant = self.tenant_id();
        Ok(rows(self.tx_db(), THRESHOLDS_OF, &[Arg::Int(tenant)], |r| {
            thresholds_from(r)
        })?
        .pop())
    }

    fn save_thresholds(&mut self, t: &Thresholds) -> Result<()> {
        let (day, super_user, [customers, recency, orders, monetary]) = thresholds_values(t)?;
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(&day),
            Arg::OptInt(super_user),
            Arg::Int(customers),
            Arg::Int(recency),
            Arg::Int(orders),
            Arg::Int(monetary),
            Arg::Int(micros(Timestamp::now())),
        ];
        self.tx_db().exec(SAVE_THRESHOLDS, &args)?;
        Ok(())
    }
}

impl<T: TxOnDb> crate::PoolRows for T {
    fn has_customer(&mut self, id: &CustomerId) -> Result<bool> {
        let key = [Arg::Int(self.tenant_id()), Arg::Text(id.as_str())];
        Ok(!rows(self.tx_db(), HAS_CUSTOMER, &key, |_| Ok(()))?.is_empty())
    }

    fn attributes(&mut self, each: &mut dyn FnMut(CustomerId, Attributes)) -> Result<()> {
        let tenant = self.tenant_id();
        self.tx_db()
            .each_row(ATTRIBUTES, &[Arg::Int(tenant)], &mut |r| {
                let (id, attributes) = attributes_from(r)?;
                each(id, attributes);
                Ok(())
            })
    }

    fn manual_tags(&mut self, customer: Option<&CustomerId>) -> Result<Vec<ManualTag>> {
        let mut args = vec![Arg::Int(self.tenant_id())];
        args.extend(customer.map(|id| Arg::Text(id.as_str())));
        let sql = manual_tags_sql(customer.is_some());
        rows(self.tx_db(), sql, &args, |r| manual_tag_from(r))
    }

    fn rules(&mut self) -> Result<Vec<StoredRule>> {
        let tenant = self.tenant_id();
        rows(self.tx_db(), RULES_OF, &[Arg::Int(tenant)], |r| {
            stored_rule_from(r)
        })
    }

    fn save_rule(&mut self, rule: &StoredRule) -> Result<()> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(rule.kind.as_str()),
            Arg::Text(&rule.name),
            Arg::Text(&rule.rule),
            Arg::Text(&rule.created_by),
            Arg::Int(micros(rule.created_at)),
            Arg::Text(rule.purpose.as_str()),
        ];
        self.tx_db().exec(SAVE_RULE, &args)?;
        Ok(())
    }

    fn delete_rule(&mut self, kind: RuleKind, name: &str) -> Result<bool> {
        let key = [
            Arg::Int(self.tenant_id()),
            Arg::Text(kind.as_str()),
            Arg::Text(name),
        ];
        let tx = self.tx_db();
        let deleted = tx.exec(DELETE_RULE, &key)?;
        tx.exec(DELETE_RULE_MEMBERS, &key)?;
        Ok(deleted > 0)
    }

    fn members(&mut self, filter: MemberFilter<'_>) -> Result<Vec<Member>> {
        let (clause, args) = member_filter(self.tenant_id(), filter);
        rows(self.tx_db(), &members_sql(clause), &args, |r| {
            member_from(r)
        })
    }

    fn add_tag(
        &mut self,
        customer: &CustomerId,
        tag: &str,
        source: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(customer.as_str()),
            Arg::Text(tag),
            Arg::Text(source),
            Arg::Int(micros(at)),
        ];
        Ok(self.tx_db().exec(INSERT_TAG, &args)? > 0)
    }

    fn remove_tag(&mut self, customer: &CustomerId, tag: &str) -> Result<bool> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(customer.as_str()),
            Arg::Text(tag),
        ];
        Ok(self.tx_db().exec(DELETE_TAG, &args)? > 0)
    }

    fn tag_families(&mut self) -> Result<Vec<(String, TagFamily)>> {
        let tenant = self.tenant_id();
        rows(self.tx_db(), TAG_FAMILIES, &[Arg::Int(tenant)], |r| {
            tag_family_from(r)
        })
    }

    fn set_tag_family(&mut self, tag: &str, family: TagFamily) -> Result<()> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(tag),
            Arg::Text(family.as_str()),
        ];
        self.tx_db().exec(SET_TAG_FAMILY, &args)?;
        Ok(())
    }

    fn history(&mut self, filter: MemberFilter<'_>, limit: usize) -> Result<Vec<HistoryRecord>> {
        self.history_page(filter, 0, limit)
    }

    fn history_page(
        &mut self,
        filter: MemberFilter<'_>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let (clause, args) = member_filter(self.tenant_id(), filter);
        let tx = self.tx_db();
        let sql = history_sql(tx.dialect(), clause, offset, limit);
        rows(tx, &sql, &args, |r| history_from(r))
    }

    fn history_by_quarter_hour(
        &mut self,
        kind: RuleKind,
        name: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64, u64)>> {
        let args = [
            Arg::Int(self.tenant_id()),
            Arg::Text(kind.as_str()),
            Arg::Text(name),
            Arg::Int(micros(since)),
        ];
        let mut out: Vec<(Timestamp, u64, u64)> = Vec::new();
        let tx = self.tx_db();
        tx.each_row(&history_buckets_sql(), &args, &mut |r| {
            let at = from_micros(r.int(0)?.saturating_mul(QUARTER_HOUR_MICROS))?;
            let n = u64::try_from(r.int(2)?).map_err(|_| corrupt("a negative count"))?;
            let entered = stored_change(r.text(1)?)? == siyu_core::segment::rules::Change::Entered;
            match out.last_mut() {
                Some(last) if last.0 == at => {}
                _ => out.push((at, 0, 0)),
            }
            if let Some(last) = out.last_mut() {
                if entered {
                    last.1 += n;
                } else {
                    last.2 += n;
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn stage_history(
        &mut self,
        since: Timestamp,
        each: &mut dyn FnMut(HistoryRecord),
    ) -> Result<()> {
        let args = [Arg::Int(self.tenant_id()), Arg::Int(micros(since))];
        let tx = self.tx_db();
        let sql = stage_history_sql(tx.dialect());
        tx.each_row(&sql, &args, &mut |r| {
            each(history_from(r)?);
            Ok(())
        })
    }
}

impl<T: OnDb> ProfileStore for T {
    fn scan_profiles(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(siyu_core::profile::Profile),
    ) -> Result<()> {
        let sql = profiles_sql("ORDER BY p.customer_id");
        scan(self.db(), &sql, tenant, |r| profile_from(r), each)
    }

    fn stream_facts(
        &mut self,
        tenant: &Tenant,
        wanted: Facts,
        sink: &mut dyn siyu_core::profile::ProfileSink,
    ) -> Result<()> {
        let key = [Arg::Int(tenant.id)];
        if wanted.customers {
            // Borrowed rows: the sink parses what it keeps.
            let sql = customer_facts_sql("ORDER BY customer_id");
            self.db().each_row(&sql, &key, &mut |r| {
                let row = CustomerRow {
                    id: r.text(0)?,
                    channel: r.opt_text(1)?,
                    joined_at: crate::from_micros(r.int(2)?)?,
                    referrer_id: r.opt_text(3)?,
                };
                sink.customer_row(row).map_err(corrupt)
            })?;
        }
        if wanted.orders {
            let db = self.db();
            let sql = report_orders_sql(db.dialect());
            db.each_row(sql, &key, &mut |r| order_line_into(r, sink))?;
        }
        if wanted.events {
            self.db()
                .each_row(STREAM_EVENTS, &key, &mut |r| event_line_into(r, sink))?;
        }
        Ok(())
    }

    fn scan_profile_lines(
        &mut self,
        tenant: &Tenant,
        each: &mut dyn FnMut(ProfileLine<'_>),
    ) -> Result<PoolExtent> {
        let key = [Arg::Int(tenant.id)];
        self.db().each_row(SCAN_PROFILE_LINES, &key, &mut |r| {
            each(profile_line_from(r)?);
            Ok(())
        })?;
        rows(self.db(), POOL_EXTENT, &key, |r| pool_extent_from(r))?
            .pop()
            .ok_or_else(|| corrupt("no row of a count"))
    }
}

/// [`crate::ReportStore::scan_left_at`] on either backend: each profile's latest `left`
/// event, and how many profiles the tenant has.
pub(crate) fn scan_left_at(
    db: &mut dyn Db,
    tenant: &Tenant,
    each: &mut dyn FnMut(&str, Timestamp),
) -> Result<u64> {
    let key = [Arg::Int(tenant.id)];
    db.each_row(SCAN_LEFT_AT, &key, &mut |r| {
        each(r.text(0)?, crate::from_micros(r.int(1)?)?);
        Ok(())
    })?;
    let count = rows(db, COUNT_PROFILES, &key, |r| r.int(0))?
        .pop()
        .ok_or_else(|| corrupt("no row of a count"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Customers whose events one statement of [`stream_events_of_customers`] reads.
const CUSTOMERS_PER_STATEMENT: usize = 500;

/// [`crate::ReportStore::stream_events_of_customers`] on either backend.
pub(crate) fn stream_events_of_customers(
    db: &mut dyn Db,
    tenant: &Tenant,
    kind: &str,
    customers: &[&str],
    sink: &mut dyn siyu_core::profile::ProfileSink,
) -> Result<()> {
    for chunk in customers.chunks(CUSTOMERS_PER_STATEMENT) {
        let list: Vec<String> = (0..chunk.len()).map(|k| format!("?{}", k + 3)).collect();
        let sql = format!(
            "SELECT customer_id, type, occurred_at FROM events
             WHERE tenant_id = ?1 AND type = ?2 AND customer_id IN ({})",
            list.join(", ")
        );
        let mut args = vec![Arg::Int(tenant.id), Arg::Text(kind)];
        args.extend(chunk.iter().map(|c| Arg::Text(c)));
        db.each_row(&sql, &args, &mut |r| event_line_into(r, sink))?;
    }
    Ok(())
}

/// [`crate::ReportStore::scan_share_counts`] on either backend.
pub(crate) fn scan_share_counts(
    db: &mut dyn Db,
    tenant: &Tenant,
    end: Timestamp,
    each: &mut dyn FnMut(&str, Timestamp, &str),
) -> Result<u64> {
    let key = [Arg::Int(tenant.id), Arg::Int(crate::micros(end))];
    db.each_row(SCAN_SHARE_COUNTS, &key, &mut |r| {
        each(r.text(0)?, crate::from_micros(r.int(1)?)?, r.text(2)?);
        Ok(())
    })?;
    let count = rows(db, COUNT_PROFILES, &key[..1], |r| r.int(0))?
        .pop()
        .ok_or_else(|| corrupt("no row of a count"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}
