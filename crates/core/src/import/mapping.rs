//! Headers as merchants' files write them: the Chinese names of the canonical columns that
//! shop systems and spreadsheets use, recognised by default, and a merchant's own mapping
//! (`--map 订单号=order_id,…`) for anything else.

use std::fmt;

use super::Kind;

/// The most pairs a mapping may hold, and the longest header name it may name.
pub const MAX_PAIRS: usize = 64;
pub const MAX_NAME_CHARS: usize = 100;

/// Names that mean a canonical column, best first: when a file has several (Taobao's
/// 订单付款时间 and 订单创建时间), the best non-empty one of each row is read.
pub fn synonyms(kind: Kind, column: &str) -> &'static [&'static str] {
    let table: &[(&str, &[&str])] = match kind {
        Kind::Orders => ORDER_SYNONYMS,
        Kind::Customers => CUSTOMER_SYNONYMS,
        Kind::Events => EVENT_SYNONYMS,
    };
    table
        .iter()
        .find(|(c, _)| *c == column)
        .map_or(&[], |(_, names)| names)
}

const ORDER_SYNONYMS: &[(&str, &[&str])] = &[
    (
        "order_id",
        &["订单号", "订单编号", "主订单编号", "订单id", "单号"],
    ),
    (
        "customer_id",
        &[
            "客户id",
            "用户id",
            "会员id",
            "买家id",
            "客户编号",
            "会员编号",
            "会员卡号",
            "买家会员名",
        ],
    ),
    (
        "ordered_at",
        &[
            "付款时间",
            "支付时间",
            "买家付款时间",
            "订单付款时间",
            "下单时间",
            "买家下单时间",
            "订单创建时间",
            "订单提交时间",
            "订单成交时间",
            "成交时间",
            "创建时间",
            "时间",
            "日期",
        ],
    ),
    (
        "amount",
        &[
            "实付金额",
            "订单实付金额",
            "买家实付金额",
            "买家实际支付金额",
            "用户实付金额(元)",
            "实收金额",
            "支付金额",
            "付款金额",
            "订单金额",
            "金额",
            "总金额",
            "订单应付金额",
        ],
    ),
    (
        "discount",
        &["优惠金额", "优惠", "折扣金额", "优惠合计", "店铺优惠合计"],
    ),
    ("coupon_code", &["优惠券", "优惠券码", "券码"]),
    (
        "channel",
        &["渠道", "销售渠道", "来源渠道", "订单来源", "来源"],
    ),
    ("status", &["订单状态", "交易状态", "状态"]),
];

const CUSTOMER_SYNONYMS: &[(&str, &[&str])] = &[
    (
        "customer_id",
        &[
            "客户id",
            "用户id",
            "会员id",
            "客户编号",
            "会员编号",
            "会员卡号",
        ],
    ),
    (
        "name",
        &["姓名", "客户姓名", "名字", "昵称", "客户昵称", "微信昵称"],
    ),
    (
        "phone",
        &[
            "手机号",
            "手机号码",
            "客户手机号",
            "手机",
            "联系手机",
            "联系电话",
            "电话",
        ],
    ),
    ("gender", &["性别", "客户性别"]),
    ("birthday", &["生日", "客户生日", "出生日期"]),
    (
        "region",
        &["地区", "所在地区", "所属区域", "城市", "省份", "微信地域"],
    ),
    ("channel", &["渠道", "来源渠道", "来源"]),
    ("referrer_id", &["推荐人id", "推荐人", "邀请人id", "邀请人"]),
    (
        "joined_at",
        &[
            "加入时间",
            "成为客户时间",
            "注册时间",
            "添加时间",
            "创建时间",
        ],
    ),
    ("tags", &["标签", "客户标签"]),
];

const EVENT_SYNONYMS: &[(&str, &[&str])] = &[
    ("event_id", &["事件id", "事件编号"]),
    ("customer_id", &["客户id", "用户id", "会员id"]),
    ("type", &["事件类型", "类型", "事件"]),
    ("occurred_at", &["发生时间", "事件时间", "时间"]),
    ("properties", &["事件属性", "属性"]),
];

/// A header name as compared: guards and a byte-order mark stripped, lower case, and
/// full-width brackets as ASCII (`用户实付金额（元）` is `用户实付金额(元)`).
pub fn header_key(raw: &str) -> String {
    super::clean_field(raw.trim_start_matches('\u{feff}'))
        .to_lowercase()
        .replace('（', "(")
        .replace('）', ")")
}

/// A merchant's mapping of their header names onto canonical columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// (header name as compared, canonical column), in the order given.
    pairs: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("'{0}' is not NAME=COLUMN")]
    NotAPair(String),
    #[error("'{0}' is mapped twice")]
    Twice(String),
    #[error("more than {MAX_PAIRS} pairs")]
    TooMany,
    #[error("'{0}' is longer than {MAX_NAME_CHARS} characters")]
    TooLong(String),
}

impl Mapping {
    /// Reads `订单号=order_id,下单时间=ordered_at`: pairs separated by commas or new lines
    /// (a mapping file holds one per line; `#` starts a comment line).
    pub fn parse(spec: &str) -> Result<Mapping, MappingError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in spec
            .split([',', '\n', '，'])
            .map(str::trim)
            .filter(|p| !p.is_empty() && !p.starts_with('#'))
        {
            let (name, column) = part
                .split_once('=')
                .map(|(n, c)| (n.trim(), c.trim()))
                .filter(|(n, c)| !n.is_empty() && !c.is_empty())
                .ok_or_else(|| MappingError::NotAPair(part.to_owned()))?;
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(MappingError::TooLong(name.to_owned()));
            }
            let key = header_key(name);
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(MappingError::Twice(name.to_owned()));
            }
            if pairs.len() == MAX_PAIRS {
                return Err(MappingError::TooMany);
            }
            pairs.push((key, column.to_lowercase()));
        }
        Ok(Mapping { pairs })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The canonical column a header name is mapped to, and its rank among the names
    /// mapped to that column (0 is the best: a row reads the best one not empty).
    pub fn target(&self, key: &str) -> Option<(&str, usize)> {
        let (_, column) = self.pairs.iter().find(|(k, _)| k == key)?;
        let rank = self
            .pairs
            .iter()
            .filter(|(_, c)| c == column)
            .position(|(k, _)| k == key)?;
        Some((column.as_str(), rank))
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, c)| (k.as_str(), c.as_str()))
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, c)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_reads_pairs_and_refuses_what_is_not_one() {
        let m = Mapping::parse("订单号=order_id， 下单时间 = ordered_at\n# note\nAmount=amount")
            .expect("mapping");
        assert_eq!(m.target("订单号"), Some(("order_id", 0)));
        assert_eq!(m.target("下单时间"), Some(("ordered_at", 0)));
        assert_eq!(m.target("amount"), Some(("amount", 0)));
        let m = Mapping::parse("付款=ordered_at,下单=ordered_at").expect("mapping");
        assert_eq!(m.target("下单"), Some(("ordered_at", 1)));
        assert_eq!(
            Mapping::parse("订单号"),
            Err(MappingError::NotAPair("订单号".into()))
        );
        assert_eq!(
            Mapping::parse("a=order_id,A=amount"),
            Err(MappingError::Twice("A".into()))
        );
        let many: Vec<String> = (0..=MAX_PAIRS).map(|i| format!("c{i}=amount")).collect();
        assert_eq!(Mapping::parse(&many.join(",")), Err(MappingError::TooMany));
    }

    #[test]
    fn every_synonym_names_one_column_of_its_kind() {
        for (kind, table) in [
            (Kind::Orders, ORDER_SYNONYMS),
            (Kind::Customers, CUSTOMER_SYNONYMS),
            (Kind::Events, EVENT_SYNONYMS),
        ] {
            let mut seen = std::collections::HashSet::new();
            for (column, names) in table {
                assert!(kind.columns().contains(column), "{kind}: {column}");
                for name in *names {
                    assert_eq!(header_key(name), *name, "{name} is kept as compared");
                    assert!(seen.insert(*name), "{kind}: {name} twice");
                }
            }
        }
    }

    #[test]
    fn the_import_page_lists_every_name_read() {
        let page = include_str!("../../../../docs/import.md");
        for table in [ORDER_SYNONYMS, CUSTOMER_SYNONYMS, EVENT_SYNONYMS] {
            for (column, names) in table {
                let row = format!("| `{column}` | {} |", names.join(", "));
                assert!(
                    page.lines().any(|l| l == row),
                    "docs/import.md lacks the row {row}"
                );
            }
        }
        for word in crate::order::status_words() {
            assert!(
                page.contains(word),
                "docs/import.md lacks the status {word}"
            );
        }
        for (alias, channel) in crate::channel::aliases() {
            assert!(
                page.lines()
                    .any(|l| l.starts_with(&format!("| `{channel}` |")) && l.contains(alias)),
                "docs/import.md lacks the channel name {alias}"
            );
        }
    }
}
