//! Lifecycle flows: how many customers moved from one stage to another over a period, read
//! from the history of the `stage:…` level tags (each move is an exit from one stage and an
//! entry into the next, recorded at the same instant by the same evaluation).

use std::collections::BTreeMap;

use jiff::civil::Date;

use siyu_core::Timestamp;
use siyu_core::lifecycle::Stage;
use siyu_core::segment::rules::Change;
use siyu_store::{HistoryRecord, Store, Tenant};

/// The longest period asked for, in days.
pub const MAX_DAYS: i64 = 366;

/// The moves of a period: (from, to) → customers moved. `None` as the from is a customer's
/// first stage (new to the pool); as the to, a customer who left it (erased or merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flows {
    pub from: Date,
    pub to: Date,
    pub moves: BTreeMap<(Option<Stage>, Option<Stage>), u64>,
}

impl Flows {
    /// Customers moved from `a` to `b`.
    pub fn between(&self, a: Option<Stage>, b: Option<Stage>) -> u64 {
        self.moves.get(&(a, b)).copied().unwrap_or(0)
    }
}

/// Why a period cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("the period ends ({to}) before it starts ({from})")]
    Backwards { from: Date, to: Date },
    #[error("a period of at most {MAX_DAYS} days")]
    TooLong,
}

fn stage_of(record: &HistoryRecord) -> Option<Stage> {
    let name = record.name.strip_prefix("stage:")?;
    Stage::ALL.into_iter().find(|s| s.name() == name)
}

/// Counts the moves in `records` (by customer, each oldest first) at or after `start` and
/// before `end`.
pub fn count_moves(
    records: impl IntoIterator<Item = HistoryRecord>,
    start: Timestamp,
    end: Timestamp,
) -> BTreeMap<(Option<Stage>, Option<Stage>), u64> {
    let mut moves = BTreeMap::new();
    // One instant of one customer: the stages left and entered.
    let mut group: Option<(String, Timestamp)> = None;
    let mut left: Vec<Stage> = Vec::new();
    let mut entered: Vec<Stage> = Vec::new();
    let mut flush = |left: &mut Vec<Stage>, entered: &mut Vec<Stage>| {
        let pairs = left.len().max(entered.len());
        for i in 0..pairs {
            *moves
                .entry((left.get(i).copied(), entered.get(i).copied()))
                .or_insert(0) += 1;
        }
        left.clear();
        entered.clear();
    };
    for r in records {
        if r.at < start || r.at >= end {
            continue;
        }
        let Some(stage) = stage_of(&r) else { continue };
        let key = (r.customer_id.as_str().to_owned(), r.at);
        if group.as_ref() != Some(&key) {
            flush(&mut left, &mut entered);
            group = Some(key);
        }
        match r.change {
            Change::Exited => left.push(stage),
            Change::Entered => entered.push(stage),
        }
    }
    flush(&mut left, &mut entered);
    moves
}

/// The moves between stages over the days `from` to `to` (the tenant's days, both
/// included), read on a snapshot.
pub fn stage_flows(
    store: &mut dyn Store,
    tenant: &Tenant,
    from: Date,
    to: Date,
) -> anyhow::Result<Result<Flows, PeriodError>> {
    if to < from {
        return Ok(Err(PeriodError::Backwards { from, to }));
    }
    if (to - from).get_days() >= MAX_DAYS as i32 {
        return Ok(Err(PeriodError::TooLong));
    }
    let start = tenant.zone.start_of(from);
    let end = tenant.zone.start_of(to.tomorrow()?);
    let mut records = Vec::new();
    let mut tx = store.read_pool(tenant)?;
    tx.stage_history(start, &mut |r| {
        if r.at < end {
            records.push(r);
        }
    })?;
    tx.commit()?;
    Ok(Ok(Flows {
        from,
        to,
        moves: count_moves(records, start, end),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use siyu_core::CustomerId;
    use siyu_core::segment::rules::RuleKind;

    fn record(id: &str, stage: &str, change: Change, second: i64) -> HistoryRecord {
        HistoryRecord {
            kind: RuleKind::Level,
            name: format!("stage:{stage}"),
            customer_id: CustomerId::parse(id).expect("id"),
            change,
            at: Timestamp::from_second(second).expect("time"),
            cause: "test".to_owned(),
        }
    }

    #[test]
    fn an_exit_and_an_entry_at_one_instant_are_one_move() {
        let t = |s| Timestamp::from_second(s).expect("time");
        let records = vec![
            record("a", "first_purchase", Change::Entered, 10),
            record("a", "first_purchase", Change::Exited, 20),
            record("a", "repeat", Change::Entered, 20),
            record("b", "prospect", Change::Entered, 5),
            record("b", "prospect", Change::Exited, 30),
            record("b", "first_purchase", Change::Entered, 30),
            record("c", "lost", Change::Exited, 40),
        ];
        let moves = count_moves(records, t(6), t(100));
        let first = Some(Stage::FirstPurchase);
        assert_eq!(moves.get(&(None, first)), Some(&1), "a's first stage");
        assert_eq!(moves.get(&(first, Some(Stage::Repeat))), Some(&1));
        assert_eq!(moves.get(&(Some(Stage::Prospect), first)), Some(&1));
        assert_eq!(moves.get(&(Some(Stage::Lost), None)), Some(&1), "c left");
        assert_eq!(
            moves.get(&(None, Some(Stage::Prospect))),
            None,
            "before the period"
        );
        assert_eq!(moves.values().sum::<u64>(), 4);
    }
}
