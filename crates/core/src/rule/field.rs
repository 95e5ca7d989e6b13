//! The field catalogue: every name a rule can compare, its kind, and the table column
//! it reads. Adding a field is a variant of [`Field`], a row of [`FIELDS`] and, for a new
//! column, a line in the table builder.

use super::table::{CodeCol, DayCol, FlagCol, IntCol, MoneyCol, TextCol};

/// A profile field a rule can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Orders,
    PurchaseDays,
    NetSpend,
    Spend365d,
    Aov,
    DaysSinceOrder,
    DaysSinceJoined,
    DaysSinceInteraction,
    MeanIntervalDays,
    CouponShare,
    Referrals,
    ReferralRevenue,
    Stage,
    Journey,
    Rfm,
    Channel,
    Region,
    Gender,
    HasLeft,
    JoinedAt,
    FirstOrderDay,
    LastOrderDay,
    LastInteractionDay,
}

/// What values a field holds, and so which comparisons and constants fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number: a count or a number of days.
    Count,
    /// Money, compared in yuan with at most two decimals.
    Money,
    /// A fraction, compared exactly with a decimal number.
    Decimal,
    /// One of a fixed list of snake_case names; compared with `=`, `!=`, `in`.
    Choice(&'static [&'static str]),
    /// Free text (a channel, a region); compared with `=`, `!=`, `in`.
    Text,
    /// `true` or `false`; compared with `=`, `!=`, `in`, or alone as a condition.
    Bool,
    /// A local calendar day: compared with `date("YYYY-MM-DD")` or `today ± Nd`.
    Date,
}

impl Kind {
    /// Whether `<`, `<=`, `>`, `>=` apply.
    pub fn is_ordered(self) -> bool {
        matches!(self, Kind::Count | Kind::Money | Kind::Decimal | Kind::Date)
    }
}

/// Where a field's values come from in a [`super::SegmentTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Int(IntCol),
    Money(MoneyCol),
    Day(DayCol),
    /// Whole days from the day in the column to the as-of day.
    DaysSince(DayCol),
    /// coupon orders / orders.
    CouponShare,
    /// (last − first purchase day) / (purchase days − 1).
    MeanInterval,
    Code(CodeCol),
    Text(TextCol),
    Flag(FlagCol),
}

pub(crate) const STAGES: &[&str] = &[
    "prospect",
    "first_purchase",
    "repeat",
    "vip",
    "at_risk",
    "lost",
];
pub(crate) const JOURNEYS: &[&str] = &[
    "stranger", "engaged", "intent", "customer", "repeat", "advocate",
];
/// `none` first: a customer RFM did not score.
pub(crate) const RFM_CLASSES: &[&str] = &[
    "none",
    "important_value",
    "important_development",
    "important_retention",
    "important_winback",
    "general_value",
    "general_development",
    "general_retention",
    "general_winback",
];
pub(crate) const GENDERS: &[&str] = &["female", "male", "other"];

pub(crate) struct FieldDef {
    pub field: Field,
    /// The canonical name, then any others the rule may use.
    pub names: &'static [&'static str],
    pub kind: Kind,
    pub source: Source,
    pub about: &'static str,
}

/// The catalogue, in the order of [`Field`].
pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef {
        field: Field::Orders,
        names: &["orders"],
        kind: Kind::Count,
        source: Source::Int(IntCol::Orders),
        about: "paid orders",
    },
    FieldDef {
        field: Field::PurchaseDays,
        names: &["purchase_days"],
        kind: Kind::Count,
        source: Source::Int(IntCol::PurchaseDays),
        about: "local days with at least one paid order",
    },
    FieldDef {
        field: Field::NetSpend,
        names: &["net_spend"],
        kind: Kind::Money,
        source: Source::Money(MoneyCol::NetSpend),
        about: "sum of paid amounts, in yuan",
    },
    FieldDef {
        field: Field::Spend365d,
        names: &["spend_365d"],
        kind: Kind::Money,
        source: Source::Money(MoneyCol::Spend365d),
        about: "paid amount over the 365 days to the as-of day, in yuan",
    },
    FieldDef {
        field: Field::Aov,
        names: &["aov"],
        kind: Kind::Money,
        source: Source::Money(MoneyCol::Aov),
        about: "net spend per paid order, in yuan (missing without paid orders)",
    },
    FieldDef {
        field: Field::DaysSinceOrder,
        names: &["days_since_order"],
        kind: Kind::Count,
        source: Source::DaysSince(DayCol::LastOrder),
        about: "whole days from the last purchase day to the as-of day (missing without paid orders)",
    },
    FieldDef {
        field: Field::DaysSinceJoined,
        names: &["days_since_joined"],
        kind: Kind::Count,
        source: Source::DaysSince(DayCol::Joined),
        about: "whole days from the day the customer joined the pool to the as-of day",
    },
    FieldDef {
        field: Field::DaysSinceInteraction,
        names: &["days_since_interaction"],
        kind: Kind::Count,
        source: Source::DaysSince(DayCol::LastInteraction),
        about: "whole days from the last interaction to the as-of day (missing without any)",
    },
    FieldDef {
        field: Field::MeanIntervalDays,
        names: &["mean_interval_days"],
        kind: Kind::Decimal,
        source: Source::MeanInterval,
        about: "(last − first purchase day) / (purchase days − 1) (missing under two purchase days)",
    },
    FieldDef {
        field: Field::CouponShare,
        names: &["coupon_share"],
        kind: Kind::Decimal,
        source: Source::CouponShare,
        about: "share of paid orders that used a coupon, 0 to 1 (missing without paid orders)",
    },
    FieldDef {
        field: Field::Referrals,
        names: &["referrals"],
        kind: Kind::Count,
        source: Source::Int(IntCol::Referrals),
        about: "customers who name this one as their referrer",
    },
    FieldDef {
        field: Field::ReferralRevenue,
        names: &["referral_revenue"],
        kind: Kind::Money,
        source: Source::Money(MoneyCol::ReferralRevenue),
        about: "net spend of the customers this one referred, in yuan",
    },
    FieldDef {
        field: Field::Stage,
        names: &["stage"],
        kind: Kind::Choice(STAGES),
        source: Source::Code(CodeCol::Stage),
        about: "lifecycle stage",
    },
    FieldDef {
        field: Field::Journey,
        names: &["journey"],
        kind: Kind::Choice(JOURNEYS),
        source: Source::Code(CodeCol::Journey),
        about: "journey stage",
    },
    FieldDef {
        field: Field::Rfm,
        names: &["rfm"],
        kind: Kind::Choice(RFM_CLASSES),
        source: Source::Code(CodeCol::Rfm),
        about: "RFM class, or none when not scored",
    },
    FieldDef {
        field: Field::Channel,
        names: &["channel"],
        kind: Kind::Text,
        source: Source::Text(TextCol::Channel),
        about: "source channel (douyin, xiaohongshu, store, …; 抖音 reads as douyin)",
    },
    FieldDef {
        field: Field::Region,
        names: &["region"],
        kind: Kind::Text,
        source: Source::Text(TextCol::Region),
        about: "region, as imported",
    },
    FieldDef {
        field: Field::Gender,
        names: &["gender"],
        kind: Kind::Choice(GENDERS),
        source: Source::Code(CodeCol::Gender),
        about: "gender",
    },
    FieldDef {
        field: Field::HasLeft,
        names: &["has_left"],
        kind: Kind::Bool,
        source: Source::Flag(FlagCol::HasLeft),
        about: "left the pool: a `left` event later than the last paid order",
    },
    FieldDef {
        field: Field::JoinedAt,
        names: &["joined_at", "joined_day"],
        kind: Kind::Date,
        source: Source::Day(DayCol::Joined),
        about: "local day the customer joined the pool",
    },
    FieldDef {
        field: Field::FirstOrderDay,
        names: &["first_order_day"],
        kind: Kind::Date,
        source: Source::Day(DayCol::FirstOrder),
        about: "local day of the first paid order (missing without paid orders)",
    },
    FieldDef {
        field: Field::LastOrderDay,
        names: &["last_order_day"],
        kind: Kind::Date,
        source: Source::Day(DayCol::LastOrder),
        about: "local day of the last paid order (missing without paid orders)",
    },
    FieldDef {
        field: Field::LastInteractionDay,
        names: &["last_interaction_day"],
        kind: Kind::Date,
        source: Source::Day(DayCol::LastInteraction),
        about: "local day of the last interaction (missing without any)",
    },
];

impl Field {
    /// Every field, in catalogue order.
    pub const ALL: [Field; 23] = [
        Field::Orders,
        Field::PurchaseDays,
        Field::NetSpend,
        Field::Spend365d,
        Field::Aov,
        Field::DaysSinceOrder,
        Field::DaysSinceJoined,
        Field::DaysSinceInteraction,
        Field::MeanIntervalDays,
        Field::CouponShare,
        Field::Referrals,
        Field::ReferralRevenue,
        Field::Stage,
        Field::Journey,
        Field::Rfm,
        Field::Channel,
        Field::Region,
        Field::Gender,
        Field::HasLeft,
        Field::JoinedAt,
        Field::FirstOrderDay,
        Field::LastOrderDay,
        Field::LastInteractionDay,
    ];

    pub(crate) fn def(self) -> &'static FieldDef {
        &FIELDS[self as usize]
    }

    /// The canonical name, as rules print it.
    pub fn name(self) -> &'static str {
        self.def().names[0]
    }

    pub fn kind(self) -> Kind {
        self.def().kind
    }

    /// A line saying what the field is.
    pub fn about(self) -> &'static str {
        self.def().about
    }

    /// The field a name stands for (exact, snake_case).
    pub fn parse(name: &str) -> Option<Field> {
        FIELDS
            .iter()
            .find(|d| d.names.contains(&name))
            .map(|d| d.field)
    }

    /// Every name a rule may use for a field.
    pub(crate) fn all_names() -> impl Iterator<Item = &'static str> {
        FIELDS.iter().flat_map(|d| d.names.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Journey, Stage};
    use crate::segment::rfm::RfmClass;

    #[test]
    fn the_catalogue_lists_every_field_once_in_order() {
        assert_eq!(FIELDS.len(), Field::ALL.len());
        for (i, (def, field)) in FIELDS.iter().zip(Field::ALL).enumerate() {
            assert_eq!(def.field, field);
            assert_eq!(field as usize, i);
            assert_eq!(Field::parse(field.name()), Some(field));
        }
        let mut names: Vec<&str> = Field::all_names().collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a name is used twice");
    }

    #[test]
    fn choice_values_are_the_names_the_domain_uses() {
        let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(stages, STAGES);
        let journeys: Vec<&str> = Journey::ALL.iter().map(|j| j.name()).collect();
        assert_eq!(journeys, JOURNEYS);
        let classes: Vec<&str> = RfmClass::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(classes, RFM_CLASSES[1..]);
        let genders: Vec<&str> = [
            crate::Gender::Female,
            crate::Gender::Male,
            crate::Gender::Other,
        ]
        .iter()
        .map(|g| g.as_str())
        .collect();
        assert_eq!(genders, GENDERS);
    }
}
