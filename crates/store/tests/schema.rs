//! Schema parity: a freshly migrated SQLite database and PostgreSQL schema have the same
//! tables, columns, NOT NULL-ness, CHECK, UNIQUE and PRIMARY KEY constraints and foreign
//! keys, read from each database's own catalogue (not from the migration files). What
//! differs on purpose is listed in `GENUINE`, each with its reason; everything else that
//! differs fails the test. Column types are not compared (INTEGER against BIGINT or
//! BOOLEAN is each dialect's way of saying the same).
//!
//! Needs `SIYU_TEST_POSTGRES` (`source .ci/pg.sh`); without it there is nothing to compare.

use std::collections::{BTreeMap, BTreeSet};

use siyu_core::metrics::cohorts::Month;
use siyu_core::{Channel, Money};
use siyu_store::{PgStore, SqliteStore, Store, Tenant};

/// The differences that are meant, as facts of `facts_*` (a leading `sqlite only: ` or
/// `postgres only: `), each with why.
const GENUINE: &[(&str, &str)] = &[
    (
        "postgres only: rule_history.seq",
        "the order changes were recorded in: SQLite's rowid keeps it",
    ),
    (
        "postgres only: rule_history.seq not null",
        "an identity column (SQLite's rowid is never NULL either)",
    ),
    (
        "postgres only: audit_log.seq",
        "the order entries were written in: SQLite's rowid keeps it",
    ),
    (
        "postgres only: audit_log.seq not null",
        "an identity column (SQLite's rowid is never NULL either)",
    ),
    (
        "postgres only: events primary key (tenant_id, event_id)",
        "SQLite keeps events in arrival order (a rowid table, migration 0015) with the id in a \
         unique index; PostgreSQL's heap is in arrival order already",
    ),
    (
        "sqlite only: events unique (event_id, tenant_id)",
        "the same key as PostgreSQL's primary key, as a unique index beside SQLite's rowid",
    ),
    (
        "sqlite only: customers check (joined_inferred) [0, 1]",
        "PostgreSQL's BOOLEAN holds only true and false; SQLite's INTEGER needs the CHECK",
    ),
];

#[test]
fn both_backends_have_the_same_schema() {
    let Some(url) = pg_url() else { return };
    let sqlite = facts_sqlite();
    let postgres = facts_postgres(&url);
    assert!(
        sqlite.iter().any(|f| f.starts_with("orders.amount")),
        "the SQLite catalogue was read: {sqlite:#?}"
    );
    assert!(
        postgres.iter().any(|f| f.starts_with("orders.amount")),
        "the PostgreSQL catalogue was read: {postgres:#?}"
    );

    let mut differences: BTreeSet<String> = sqlite
        .difference(&postgres)
        .map(|f| format!("sqlite only: {f}"))
        .collect();
    differences.extend(
        postgres
            .difference(&sqlite)
            .map(|f| format!("postgres only: {f}")),
    );
    let genuine: BTreeSet<String> = GENUINE.iter().map(|(f, _)| f.to_string()).collect();
    let unexplained: Vec<&String> = differences.difference(&genuine).collect();
    let stale: Vec<&String> = genuine.difference(&differences).collect();
    assert!(
        unexplained.is_empty(),
        "the backends' schemas differ (mend the side that lacks with a migration, or list \
         the difference in GENUINE with its reason): {unexplained:#?}"
    );
    assert!(
        stale.is_empty(),
        "listed in GENUINE but no longer a difference: {stale:#?}"
    );
}

fn pg_url() -> Option<String> {
    match std::env::var("SIYU_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: SIYU_TEST_POSTGRES is not set (source .ci/pg.sh to run it)");
            None
        }
    }
}

// ---- SQLite -------------------------------------------------------------------------

fn facts_sqlite() -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("schema.db");
    let path = path.to_str().expect("a UTF-8 path");
    let mut store = SqliteStore::open(path).expect("open");
    assert!(store.migrate().expect("migrate") > 0);
    drop(store);

    let conn = rusqlite::Connection::open(path).expect("open again");
    // The planner's statistics of migrations 8 and 9 outlive the table rebuilds of 10
    // (orders_by_customer's as set again by 12, which widened it).
    let stats: Vec<String> = conn
        .prepare("SELECT tbl || ' ' || idx || ' ' || stat FROM sqlite_stat1 ORDER BY 1")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("statistics");
    for kept in [
        "orders orders_by_customer 10000000 10 10 2 2 2",
        "events events_by_customer 10000000 20 20 2",
        "customers customers 1000000 1000000 1",
        "rule_history rule_history_by_customer 1000000 1000000 10 1",
    ] {
        assert!(stats.iter().any(|s| s == kept), "{kept} in {stats:#?}");
    }
    let mut facts = BTreeSet::new();
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("tables");
    for (table, sql) in tables {
        let without_rowid = strip_comments(&sql)
            .to_ascii_lowercase()
            .contains("without rowid");
        // (name, not null, position in the primary key, declared type)
        let columns: Vec<(String, bool, i64, String)> = conn
            .prepare("SELECT name, \"notnull\", pk, type FROM pragma_table_info(?1) ORDER BY cid")
            .and_then(|mut s| {
                s.query_map([&table], |r| {
                    Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("columns");
        let pk: Vec<&(String, bool, i64, String)> = {
            let mut pk: Vec<_> = columns.iter().filter(|c| c.2 > 0).collect();
            pk.sort_by_key(|c| c.2);
            pk
        };
        // An INTEGER PRIMARY KEY of a rowid table is the rowid: never NULL, and no index.
        let rowid_alias =
            !without_rowid && pk.len() == 1 && pk[0].3.eq_ignore_ascii_case("integer");
        for (name, not_null, _, _) in &columns {
            facts.insert(format!("{table}.{name}"));
            if *not_null || (rowid_alias && *name == pk[0].0) {
                facts.insert(format!("{table}.{name} not null"));
            }
        }
        if rowid_alias {
            facts.insert(format!("{table} primary key ({})", pk[0].0));
        }

        let names: BTreeSet<String> = columns.iter().map(|c| c.0.clone()).collect();
        for check in checks_of(&sql) {
            facts.insert(format!("{table} check {}", check_signature(&check, &names)));
        }

        let indexes: Vec<(String, bool, String, bool)> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")
            .and_then(|mut s| {
                s.query_map([&table], |r| {
                    Ok((
                        r.get(0)?,
                        r.get::<_, i64>(1)? != 0,
                        r.get(2)?,
                        r.get::<_, i64>(3)? != 0,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("indexes");
        for (index, unique, origin, partial) in indexes {
            if !unique || partial {
                continue;
            }
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .and_then(|mut s| {
                    s.query_map([&index], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .expect("index columns");
            let kind = if origin == "pk" {
                "primary key"
            } else {
                "unique"
            };
            facts.insert(format!("{table} {kind} ({})", columns.join(", ")));
        }

        // (id, seq, referenced table, from, to)
        let mut keys: BTreeMap<i64, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
        let rows: Vec<(i64, String, String, Option<String>)> = conn
            .prepare("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
            .and_then(|mut s| {
                s.query_map([&table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .expect("foreign keys");
        for (id, to_table, from, to) in rows {
            let key = keys.entry(id).or_insert_with(|| (to_table, vec![], vec![]));
            key.1.push(from);
            key.2.push(to.unwrap_or_else(|| "<primary key>".into()));
        }
        for (to_table, from, to) in keys.into_values() {
            facts.insert(format!(
                "{table} foreign key ({}) references {to_table} ({})",
                from.join(", "),
                to.join(", ")
            ));
        }
    }
    facts
}

/// `sql` without its `-- …` comments (string literals kept as they are).
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                out.push(c);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\'' {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The expressions of the `CHECK (…)` constraints of a `CREATE TABLE` statement.
fn checks_of(sql: &str) -> Vec<String> {
    let sql = strip_comments(sql);
    let lower = sql.to_ascii_lowercase();
    let bytes = sql.as_bytes();
    let mut checks = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("check") {
        let start = from + at;
        from = start + 5;
        let word_before =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let word_after = bytes
            .get(from)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if word_before || word_after {
            continue;
        }
        let Some(open) = sql[from..].find('(').map(|i| from + i) else {
            break;
        };
        let mut depth = 0;
        let mut in_string = false;
        for (i, c) in sql[open..].char_indices() {
            match c {
                '\'' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        checks.push(sql[open + 1..open + i].to_owned());
                        from = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    checks
}

// ---- PostgreSQL -----------------------------------------------------------------------

fn facts_postgres(url: &str) -> BTreeSet<String> {
    let schema = format!("t_schema_parity_{}", std::process::id());
    let mut store = PgStore::connect_in_schema(url, &schema).expect("connect");
    assert!(store.migrate().expect("migrate") > 0, "a fresh schema");
    drop(store);
    let facts = read_postgres(url, &schema);
    PgStore::drop_schema(url, &schema).expect("drop the schema");
    facts
}

fn read_postgres(url: &str, schema: &str) -> BTreeSet<String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let mut facts = BTreeSet::new();
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text, is_nullable::text = 'NO' \
             FROM information_schema.columns WHERE table_schema = $1",
            &[&schema],
        )
        .expect("columns")
    {
        let (table, column, not_null): (String, String, bool) =
            (row.get(0), row.get(1), row.get(2));
        facts.insert(format!("{table}.{column}"));
        if not_null {
            facts.insert(format!("{table}.{column} not null"));
        }
        names.entry(table).or_default().insert(column);
    }
    for row in client
        .query(
            "SELECT c.relname::text, pg_get_constraintdef(k.oid) \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND k.contype = 'c'",
            &[&schema],
        )
        .expect("checks")
    {
        let (table, definition): (String, String) = (row.get(0), row.get(1));
        let expression = definition
            .strip_prefix("CHECK ")
            .unwrap_or_else(|| panic!("a CHECK: {definition}"));
        let columns = names.get(&table).cloned().unwrap_or_default();
        facts.insert(format!(
            "{table} check {}",
            check_signature(expression, &columns)
        ));
    }
    for row in client
        .query(
            "SELECT t.relname::text, i.indisprimary, \
                    array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE n.nspname = $1 AND i.indisunique AND i.indpred IS NULL \
             GROUP BY t.relname, i.indexrelid, i.indisprimary",
            &[&schema],
        )
        .expect("unique indexes")
    {
        let (table, primary, columns): (String, bool, Vec<String>) =
            (row.get(0), row.get(1), row.get(2));
        let kind = if primary { "primary key" } else { "unique" };
        facts.insert(format!("{table} {kind} ({})", columns.join(", ")));
    }
    for row in client
        .query(
            "SELECT c.relname::text, r.relname::text, \
                    (SELECT array_agg(a.attname::text ORDER BY k.ord) \
                     FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, ord) \
                     JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum), \
                    (SELECT array_agg(a.attname::text ORDER BY k.ord) \
                     FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, ord) \
                     JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum) \
             FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid \
             JOIN pg_class r ON r.oid = f.confrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND f.contype = 'f'",
            &[&schema],
        )
        .expect("foreign keys")
    {
        let (table, to_table, from, to): (String, String, Vec<String>, Vec<String>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        facts.insert(format!(
            "{table} foreign key ({}) references {to_table} ({})",
            from.join(", "),
            to.join(", ")
        ));
    }
    facts
}

// ---- CHECK expressions in both dialects ---------------------------------------------

/// What a CHECK says, in a form both dialects' texts give alike: the columns it names,
/// its order comparisons and its literals, e.g. `(amount) >= [0]` or
/// `(kind) [segment, tag]`. SQLite keeps the text as written (`kind IN ('a', 'b')`, or
/// `kind = 'a' OR kind = 'b'`), PostgreSQL its own rendering
/// (`kind = ANY (ARRAY['a'::text, 'b'::text])`); equality and membership read the same.
fn check_signature(expression: &str, columns: &BTreeSet<String>) -> String {
    let mut named = BTreeSet::new();
    let mut comparisons = BTreeSet::new();
    let mut literals = BTreeSet::new();
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut literal = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                literal.push(chars[i]);
                i += 1;
            }
            literals.insert(literal);
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == '"' {
            let mut word = String::new();
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '"')
            {
                if chars[i] != '"' {
                    word.push(chars[i]);
                }
                i += 1;
            }
            if columns.contains(&word) {
                named.insert(word);
            }
        } else if c.is_ascii_digit() {
            let mut number = String::new();
            while i < chars.len() && chars[i].is_ascii_digit() {
                number.push(chars[i]);
                i += 1;
            }
            literals.insert(number);
        } else if c == '<' || c == '>' {
            let mut op = c.to_string();
            if chars.get(i + 1) == Some(&'=') {
                op.push('=');
                i += 1;
            } else if c == '<' && chars.get(i + 1) == Some(&'>') {
                op = String::new(); // `<>` is an equality's negation, not an order
                i += 1;
            }
            if !op.is_empty() {
                comparisons.insert(op);
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    let named: Vec<String> = named.into_iter().collect();
    let comparisons: Vec<String> = comparisons.into_iter().collect();
    let literals: Vec<String> = literals.into_iter().collect();
    let mut signature = format!("({})", named.join(", "));
    if !comparisons.is_empty() {
        signature.push(' ');
        signature.push_str(&comparisons.join(" "));
    }
    signature.push_str(&format!(" [{}]", literals.join(", ")));
    signature
}

#[test]
fn a_check_reads_alike_in_both_dialects() {
    let columns: BTreeSet<String> = ["kind", "amount"].iter().map(|s| s.to_string()).collect();
    let sqlite_in = check_signature("kind IN ('segment', 'tag')", &columns);
    let sqlite_or = check_signature("kind = 'segment' OR kind = 'tag'", &columns);
    let postgres = check_signature(
        "((kind = ANY (ARRAY['segment'::text, 'tag'::text])))",
        &columns,
    );
    assert_eq!(sqlite_in, "(kind) [segment, tag]");
    assert_eq!(sqlite_or, sqlite_in);
    assert_eq!(postgres, sqlite_in);
    assert_eq!(
        check_signature("((amount >= 0))", &columns),
        "(amount) >= [0]"
    );
    assert_ne!(
        check_signature("amount > 0", &columns),
        check_signature("amount >= 0", &columns)
    );
    assert_eq!(
        checks_of("CREATE TABLE x (a INTEGER, -- no CHECK here\n b TEXT CHECK (b IN ('x', 'y')))"),
        vec!["b IN ('x', 'y')".to_owned()]
    );
}

/// The foreign keys both schemas declare hold on both: a setting, a channel's cost or a
/// token of a tenant that does not exist is refused, not stored.
#[test]
fn a_row_of_a_tenant_that_does_not_exist_is_refused_on_both() {
    let mut sqlite = SqliteStore::open(":memory:").expect("open");
    sqlite.migrate().expect("migrate");
    refuses_an_unknown_tenant(&mut sqlite);
    let Some(url) = pg_url() else { return };
    let schema = format!("t_schema_fk_{}", std::process::id());
    let mut postgres = PgStore::connect_in_schema(&url, &schema).expect("connect");
    postgres.migrate().expect("migrate");
    refuses_an_unknown_tenant(&mut postgres);
    drop(postgres);
    PgStore::drop_schema(&url, &schema).expect("drop the schema");
}

fn refuses_an_unknown_tenant(store: &mut dyn Store) {
    let real = store.tenant("shop").expect("a tenant");
    let ghost = Tenant {
        id: real.id + 1000,
        name: "ghost".into(),
        zone: real.zone.clone(),
    };
    let backend = store.backend();
    assert!(
        store.set_setting(&ghost, "lang", "zh").is_err(),
        "{backend}: a setting of no tenant"
    );
    assert!(
        store
            .set_channel_cost(
                &ghost,
                &Channel::parse("douyin").expect("a channel"),
                Month::parse("2025-03").expect("a month"),
                Money::from_fen(100),
            )
            .is_err(),
        "{backend}: a channel cost of no tenant"
    );
    assert!(store.settings(&ghost).expect("settings").is_empty());
    store
        .set_setting(&real, "lang", "zh")
        .expect("the real tenant's setting");
}
