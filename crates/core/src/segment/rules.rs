//! Saved rules and what they select: segments, rule tags and the built-in level tags,
//! evaluated together over the pool, and the entered / exited changes against the
//! membership kept before.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::Stage;
use crate::rule::{Bitset, Rule, RuleError};
use crate::segment::pool::Pool;
use crate::segment::rfm::RfmClass;

/// What a saved rule makes of the customers it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Members of a named segment.
    Segment,
    /// Customers carrying a tag defined by a rule.
    Tag,
    /// The built-in level tags: `stage:<stage>` and `rfm:<class>`.
    Level,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Segment => "segment",
            RuleKind::Tag => "tag",
            RuleKind::Level => "level",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        match s {
            "segment" => Some(RuleKind::Segment),
            "tag" => Some(RuleKind::Tag),
            "level" => Some(RuleKind::Level),
            _ => None,
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four tag families of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagFamily {
    /// Attributes: region, age band, gender.
    Static,
    /// Spend level, frequency, price sensitivity, preferred category.
    Consumption,
    /// Source channel, follows the official account, took part in a referral, abandoned a cart.
    Behaviour,
    /// Lifecycle stage, RFM class, VIP.
    Level,
}

impl TagFamily {
    pub const ALL: [TagFamily; 4] = [
        TagFamily::Static,
        TagFamily::Consumption,
        TagFamily::Behaviour,
        TagFamily::Level,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TagFamily::Static => "static",
            TagFamily::Consumption => "consumption",
            TagFamily::Behaviour => "behaviour",
            TagFamily::Level => "level",
        }
    }

    pub fn parse(s: &str) -> Option<TagFamily> {
        let s = s.trim().to_ascii_lowercase();
        TagFamily::ALL
            .into_iter()
            .find(|f| f.as_str() == s || (s == "behavior" && *f == TagFamily::Behaviour))
    }
}

impl fmt::Display for TagFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a segment is for. A marketing segment (the default) never holds a customer who
/// opted out of marketing; an analysis segment counts everyone its rule selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    #[default]
    Marketing,
    Analysis,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Analysis => "analysis",
        }
    }

    pub fn parse(s: &str) -> Option<Purpose> {
        match s.trim().to_ascii_lowercase().as_str() {
            "marketing" => Some(Purpose::Marketing),
            "analysis" => Some(Purpose::Analysis),
            _ => None,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A saved rule: a segment or a rule tag. Only a segment's purpose matters: tags describe
/// customers, segments are what campaigns send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub kind: RuleKind,
    pub name: String,
    pub rule: Rule,
    pub purpose: Purpose,
}

/// Why a set of definitions cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    #[error("{kind} '{name}': {error}")]
    Rule {
        kind: RuleKind,
        name: String,
        error: RuleError,
    },
    #[error("the tag rules {0} depend on each other in a circle")]
    Cycle(String),
}

/// Why a name is refused (see [`check_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("'{0}' is longer than 64 characters")]
    TooLong(String),
    #[error("'{0}' starts or ends with a space or holds a control character")]
    Unprintable(String),
}

/// A name a segment, tag or level tag may have: 1 to 64 characters, none of them a
/// control character, not starting or ending with a space.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > 64 {
        return Err(NameError::TooLong(name.to_owned()));
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(NameError::Unprintable(name.to_owned()));
    }
    Ok(())
}

/// The order in which tag rules must run so that each runs after the rule tags it asks
/// `has_tag` of: indexes into `defs` (tag rules only), or the tags that form a circle.
pub fn tag_rule_order(defs: &[Definition]) -> Result<Vec<usize>, EvaluationError> {
    let tag_rules: Vec<usize> = (0..defs.len())
        .filter(|&i| defs[i].kind == RuleKind::Tag)
        .collect();
    let index_of = |tag: &str| tag_rules.iter().copied().find(|&i| defs[i].name == tag);
    // Depth-first, marking each rule while its dependencies are visited.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let mut marks = vec![Mark::New; defs.len()];
    let mut order = Vec::with_capacity(tag_rules.len());
    fn visit(
        i: usize,
        defs: &[Definition],
        index_of: &dyn Fn(&str) -> Option<usize>,
        marks: &mut [Mark],
        order: &mut Vec<usize>,
        path: &mut Vec<usize>,
    ) -> Result<(), Vec<usize>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Visiting => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                return Err(path[start..].to_vec());
            }
            Mark::New => {}
        }
        marks[i] = Mark::Visiting;
        path.push(i);
        for tag in defs[i].rule.tags() {
            if let Some(j) = index_of(tag) {
                visit(j, defs, index_of, marks, order, path)?;
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    for &i in &tag_rules {
        let mut path = Vec::new();
        visit(i, defs, &index_of, &mut marks, &mut order, &mut path).map_err(|circle| {
            let names: Vec<String> = circle
                .iter()
                .map(|&j| format!("'{}'", defs[j].name))
                .collect();
            EvaluationError::Cycle(names.join(" → "))
        })?;
    }
    Ok(order)
}

/// The customers (rows of the pool) a rule or level tag selects.
#[derive(Debug, Clone)]
pub struct Selection {
    pub kind: RuleKind,
    pub name: String,
    pub members: Bitset,
}

/// The name of the level tag of a stage.
pub fn stage_tag(stage: Stage) -> String {
    format!("stage:{}", stage.name())
}

/// The name of the level tag of an RFM class.
pub fn rfm_tag(class: RfmClass) -> String {
    format!("rfm:{}", class.name())
}

/// Evaluates every definition over the pool, rule tags first (each in the table before
/// the rules that ask for it), then segments, then the level tags of every stage and RFM
/// class. A rule tag adds to a manual tag of the same name in the table. A marketing
/// segment leaves out the customers who opted out of marketing.
pub fn evaluate(pool: &mut Pool, defs: &[Definition]) -> Result<Vec<Selection>, EvaluationError> {
    let mut out = Vec::new();
    let order = tag_rule_order(defs)?;
    let segments = (0..defs.len()).filter(|&i| defs[i].kind == RuleKind::Segment);
    for i in order.into_iter().chain(segments) {
        let d = &defs[i];
        let mut members = d
            .rule
            .members(&pool.table)
            .map_err(|error| EvaluationError::Rule {
                kind: d.kind,
                name: d.name.clone(),
                error,
            })?;
        if d.kind == RuleKind::Tag {
            pool.table.add_tag(&d.name, &members);
        } else if d.purpose == Purpose::Marketing {
            members.and_not(&pool.opted_out);
        }
        out.push(Selection {
            kind: d.kind,
            name: d.name.clone(),
            members,
        });
    }
    let len = pool.table.len();
    for stage in Stage::ALL {
        out.push(Selection {
            kind: RuleKind::Level,
            name: stage_tag(stage),
            members: Bitset::from_fn(len, |row| pool.rows[row].stage == stage),
        });
    }
    for class in RfmClass::ALL {
        out.push(Selection {
            kind: RuleKind::Level,
            name: rfm_tag(class),
            members: Bitset::from_fn(len, |row| pool.rows[row].rfm == Some(class)),
        });
    }
    Ok(out)
}

/// Whether a customer came into or left a segment or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Entered,
    Exited,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Entered => "entered",
            Change::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<Change> {
        match s {
            "entered" => Some(Change::Entered),
            "exited" => Some(Change::Exited),
            _ => None,
        }
    }
}

/// The changes from the members kept before (`before`, sorted) to the members now (`now`,
/// in any order): who entered and who exited, each list sorted.
pub fn membership_changes<'a>(
    before: &[&'a str],
    now: impl IntoIterator<Item = &'a str>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut now: Vec<&str> = now.into_iter().collect();
    now.sort_unstable();
    let (mut entered, mut exited) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < before.len() || j < now.len() {
        match (before.get(i), now.get(j)) {
            (Some(b), Some(n)) if b == n => {
                i += 1;
                j += 1;
            }
            (Some(b), Some(n)) if b < n => {
                exited.push(*b);
                i += 1;
            }
            (Some(b), None) => {
                exited.push(*b);
                i += 1;
            }
            (_, Some(n)) => {
                entered.push(*n);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (entered, exited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: RuleKind, name: &str, rule: &str) -> Definition {
        Definition {
            kind,
            name: name.into(),
            rule: Rule::parse(rule).expect(rule),
            purpose: Purpose::Marketing,
        }
    }

    #[test]
    fn tag_rules_run_after_the_tags_they_ask_for() {
        let defs = vec![
            def(RuleKind::Tag, "a", r#"has_tag("b") and orders > 1"#),
            def(RuleKind::Segment, "s", r#"has_tag("a")"#),
            def(RuleKind::Tag, "b", r#"has_tag("manual") or orders > 3"#),
        ];
        assert_eq!(tag_rule_order(&defs), Ok(vec![2, 0]));
    }

    #[test]
    fn a_circle_of_tag_rules_is_named() {
        let defs = vec![
            def(RuleKind::Tag, "a", r#"has_tag("b")"#),
            def(RuleKind::Tag, "b", r#"has_tag("c")"#),
            def(RuleKind::Tag, "c", r#"has_tag("a")"#),
        ];
        assert_eq!(
            tag_rule_order(&defs),
            Err(EvaluationError::Cycle("'a' → 'b' → 'c'".into()))
        );
        let own = vec![def(RuleKind::Tag, "a", r#"has_tag("a")"#)];
        assert!(tag_rule_order(&own).is_err());
    }

    #[test]
    fn changes_are_who_came_and_who_left() {
        let (entered, exited) = membership_changes(&["a", "c", "d"], ["e", "a", "b", "d"]);
        assert_eq!(entered, vec!["b", "e"]);
        assert_eq!(exited, vec!["c"]);
        let (entered, exited) = membership_changes(&[], std::iter::empty());
        assert!(entered.is_empty() && exited.is_empty());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("高价值 客户").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(" x").is_err());
        assert!(check_name("a\tb").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
