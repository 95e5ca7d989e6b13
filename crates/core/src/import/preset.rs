//! The exports merchants download from the platforms they sell on, read as they are:
//! which of their columns are siyu's, what their customer key is, and how their rows are
//! shaped. A file whose header carries a preset's signature is recognised without being
//! named. (The facts come from the platforms' public export formats; see docs/import.md.)

use super::{HeaderError, Kind, mapping::header_key};

/// One platform's export of one kind.
#[derive(Debug)]
pub struct Preset {
    pub name: &'static str,
    pub kind: Kind,
    /// The platform, as a channel: the orders' channel when the file names none.
    pub channel: &'static str,
    /// Header names that together identify the export (every one present).
    signature: &'static [&'static str],
    /// For each canonical column it fills, the export's names best first: a row reads the
    /// best one that is not empty (a masked phone or an encrypted placeholder is empty).
    pub columns: &'static [(&'static str, &'static [&'static str])],
    /// Rows are items, several per order, one order's rows together: they are summed into
    /// the order (amount and discount).
    pub items: bool,
}

/// Exports of items rather than orders that siyu refuses, naming the one to use.
struct ItemList {
    signature: &'static [&'static str],
    message: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "youzan",
        kind: Kind::Orders,
        channel: "youzan",
        signature: &["订单号", "订单实付金额", "买家付款时间"],
        columns: &[
            ("order_id", &["订单号"]),
            (
                "customer_id",
                &["买家手机号", "收货人手机号/提货人手机号", "买家昵称"],
            ),
            ("ordered_at", &["买家付款时间", "订单创建时间"]),
            ("amount", &["订单实付金额"]),
            ("discount", &["店铺优惠合计"]),
            ("channel", &["销售渠道"]),
            ("status", &["订单状态"]),
        ],
        items: false,
    },
    Preset {
        name: "taobao",
        kind: Kind::Orders,
        channel: "taobao",
        signature: &["订单编号", "买家会员名", "订单状态"],
        columns: &[
            ("order_id", &["订单编号"]),
            ("customer_id", &["买家会员名"]),
            (
                "ordered_at",
                &[
                    "订单付款时间",
                    "买家付款时间",
                    "订单创建时间",
                    "买家下单时间",
                ],
            ),
            ("amount", &["买家实际支付金额", "买家实付金额"]),
            ("status", &["订单状态"]),
        ],
        items: false,
    },
    Preset {
        name: "douyin",
        kind: Kind::Orders,
        channel: "douyin",
        signature: &["主订单编号", "子订单编号", "订单提交时间"],
        columns: &[
            ("order_id", &["主订单编号"]),
            ("customer_id", &["收件人手机号", "收件人"]),
            ("ordered_at", &["订单提交时间"]),
            ("amount", &["订单应付金额"]),
            ("status", &["订单状态"]),
        ],
        items: true,
    },
    Preset {
        name: "pdd",
        kind: Kind::Orders,
        channel: "pdd",
        signature: &["订单号", "用户实付金额(元)", "订单成交时间"],
        columns: &[
            ("order_id", &["订单号"]),
            ("customer_id", &["手机", "收货人手机号", "收货人"]),
            ("ordered_at", &["支付时间", "订单成交时间"]),
            ("amount", &["用户实付金额(元)"]),
            ("discount", &["店铺优惠折扣(元)"]),
            ("status", &["订单状态"]),
        ],
        items: false,
    },
    Preset {
        name: "youzan",
        kind: Kind::Customers,
        channel: "youzan",
        signature: &["客户昵称", "客户手机号", "成为客户时间"],
        columns: &[
            ("customer_id", &["客户手机号", "客户昵称"]),
            ("name", &["客户姓名", "客户昵称"]),
            ("phone", &["客户手机号"]),
            ("gender", &["客户性别"]),
            ("birthday", &["客户生日"]),
            ("region", &["所属区域", "微信地域"]),
            ("channel", &["来源渠道"]),
            ("joined_at", &["成为客户时间"]),
            ("tags", &["标签"]),
        ],
        items: false,
    },
];

const ITEM_LISTS: &[ItemList] = &[ItemList {
    signature: &["订单编号", "主订单编号", "标题", "购买数量"],
    message: "this is Taobao's item list (one row per 子订单): import the order list \
              (已卖出的宝贝 → 订单报表), which holds each order once with what the buyer paid",
}];

/// The preset named `name` for files of `kind` (a platform's orders and its customer list
/// share a name), else the one of another kind, which the import then refuses by name.
pub fn named(name: &str, kind: Kind) -> Option<&'static Preset> {
    let mut of_name = PRESETS.iter().filter(|p| p.name == name);
    of_name
        .clone()
        .find(|p| p.kind == kind)
        .or_else(|| of_name.next())
}

/// The names of every preset, for messages.
pub fn names() -> String {
    let mut names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    names.dedup();
    names.join(", ")
}

/// The preset whose signature the header of a `kind` file carries, if one does; an
/// error for an export of items that must not be read as orders.
pub fn detect(kind: Kind, header: &[String]) -> Result<Option<&'static Preset>, HeaderError> {
    let keys: Vec<String> = header.iter().map(|h| header_key(h)).collect();
    let has_all = |names: &[&str]| names.iter().all(|n| keys.iter().any(|k| k == n));
    if let Some(list) = ITEM_LISTS.iter().find(|l| has_all(l.signature)) {
        return Err(HeaderError::ItemList(list.message));
    }
    Ok(PRESETS
        .iter()
        .find(|p| p.kind == kind && has_all(p.signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &str) -> Vec<String> {
        names.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn an_export_is_recognised_by_its_signature() {
        let youzan =
            header("订单号,销售渠道,订单状态,订单创建时间,买家付款时间,订单实付金额,分销员,分销员");
        assert_eq!(
            detect(Kind::Orders, &youzan).expect("ok").map(|p| p.name),
            Some("youzan")
        );
        let douyin = header(
            "\u{feff}主订单编号,子订单编号,选购商品,订单应付金额,收件人,收件人手机号,订单提交时间,订单状态",
        );
        assert_eq!(
            detect(Kind::Orders, &douyin).expect("ok").map(|p| p.name),
            Some("douyin")
        );
        let pdd = header("商品,订单号,订单状态,用户实付金额（元）,订单成交时间,支付时间");
        assert_eq!(
            detect(Kind::Orders, &pdd).expect("ok").map(|p| p.name),
            Some("pdd")
        );
        assert!(
            detect(Kind::Orders, &header("订单号,客户ID,下单时间,金额"))
                .expect("ok")
                .is_none()
        );
        assert!(detect(Kind::Customers, &youzan).expect("ok").is_none());
        let customers = header(
            "客户姓名,客户昵称,客户手机号,客户生日,客户性别,标签,是否会员,消费次数,来源渠道,成为客户时间",
        );
        let found = detect(Kind::Customers, &customers).expect("ok");
        assert_eq!(
            found.map(|p| (p.name, p.kind)),
            Some(("youzan", Kind::Customers))
        );
        assert!(detect(Kind::Orders, &customers).expect("ok").is_none());
        assert_eq!(
            named("youzan", Kind::Customers).map(|p| p.kind),
            Some(Kind::Customers)
        );
        assert_eq!(
            named("youzan", Kind::Orders).map(|p| p.kind),
            Some(Kind::Orders)
        );
        assert_eq!(
            named("taobao", Kind::Customers).map(|p| p.kind),
            Some(Kind::Orders)
        );
        let items = header("订单编号,主订单编号,标题,价格,购买数量,订单状态");
        assert!(matches!(
            detect(Kind::Orders, &items),
            Err(HeaderError::ItemList(_))
        ));
    }

    #[test]
    fn every_preset_fills_the_required_columns_with_columns_of_its_kind() {
        for p in PRESETS {
            for required in p.kind.required() {
                assert!(
                    p.columns.iter().any(|(c, _)| c == required),
                    "{}: {required}",
                    p.name
                );
            }
            for (column, names) in p.columns {
                assert!(p.kind.columns().contains(column), "{}: {column}", p.name);
                for name in *names {
                    assert_eq!(header_key(name), *name, "{}: {name}", p.name);
                }
            }
        }
    }

    #[test]
    fn the_import_page_lists_every_preset_as_it_reads() {
        let page = include_str!("../../../../docs/import.md");
        for p in PRESETS {
            let columns: Vec<String> = p
                .columns
                .iter()
                .map(|(c, names)| format!("`{c}`: {}", names.join(", ")))
                .collect();
            let row = format!(
                "| `{}` | {} | {} |",
                p.name,
                p.signature.join(", "),
                columns.join("; ")
            );
            assert!(page.lines().any(|l| l == row), "docs/import.md lacks {row}");
        }
    }
}
