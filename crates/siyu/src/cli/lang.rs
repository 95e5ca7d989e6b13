//! The language of what people read (`--lang zh|en`, or the tenant's setting `lang`):
//! tables' headers and labels, headings and notes. CSV and JSON are for programs and stay
//! as they are in every language.

use std::sync::OnceLock;

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Lang {
    /// English (the default).
    #[default]
    En,
    /// 简体中文.
    Zh,
}

impl Lang {
    /// A stored or typed language: `zh`, `zh-CN`, `中文`, `en`, `en-US`, `English`.
    pub fn parse(text: &str) -> Option<Lang> {
        let t = text.trim().to_lowercase();
        if t == "zh"
            || t.starts_with("zh-")
            || t.starts_with("zh_")
            || t == "中文"
            || t == "chinese"
        {
            Some(Lang::Zh)
        } else if t == "en" || t.starts_with("en-") || t.starts_with("en_") || t == "english" {
            Some(Lang::En)
        } else {
            None
        }
    }
}

static LANG: OnceLock<Lang> = OnceLock::new();

/// Chooses the language for this run; the first choice stands (`--lang` before the
/// tenant's setting).
pub fn choose(lang: Lang) {
    let _ = LANG.set(lang);
}

pub fn current() -> Lang {
    LANG.get().copied().unwrap_or_default()
}

pub fn zh() -> bool {
    current() == Lang::Zh
}

/// `en` in the chosen language: itself in English, its entry in [`ZH`] in Chinese (itself
/// when it has none: a name, a number).
pub fn tr(en: &str) -> String {
    if zh()
        && let Some((_, zh)) = ZH.iter().find(|(e, _)| *e == en)
    {
        return (*zh).to_owned();
    }
    en.to_owned()
}

/// A slice of a report (`all`, `channel douyin`, `stage vip`, `segment NAME`): its kind
/// and, for stages, its name in the chosen language.
pub fn slice(text: &str) -> String {
    match text.split_once(' ') {
        Some((kind, name)) => format!("{} {}", tr(kind), tr(name)),
        None => tr(text),
    }
}

/// One text in each language, chosen: for headings and notes with figures in them.
pub fn pick(en: String, zh: String) -> String {
    if self::zh() { zh } else { en }
}

/// Headers and labels of the tables, and the names of stages and factors, in Chinese.
const ZH: &[(&str, &str)] = &[
    // figures
    ("figure", "指标"),
    ("value", "数值"),
    ("customers", "客户数"),
    ("customers in the pool", "客户池人数"),
    ("buyers", "购买人数"),
    ("buyers / pool", "购买人数 / 客户池"),
    ("paid orders", "付款订单"),
    ("refunded orders", "退款订单"),
    ("GMV", "GMV（成交额）"),
    ("AOV", "客单价"),
    ("repurchase rate", "复购率"),
    ("first order day", "首单日期"),
    ("last order day", "末单日期"),
    ("channel", "渠道"),
    ("conversion", "转化率"),
    ("unknown", "未知"),
    ("all", "全部"),
    ("stage", "阶段"),
    ("share", "占比"),
    ("slice", "切片"),
    ("factor", "因子"),
    ("period", "本期"),
    ("compared", "对比期"),
    ("share of change", "变化贡献"),
    ("users", "用户数"),
    ("retention", "留存率"),
    ("purchases_per_buyer", "人均购买次数"),
    ("aov", "客单价"),
    ("cohort", "同期群"),
    ("repeaters", "复购人数"),
    ("rate", "比率"),
    ("reached", "到达人数"),
    ("furthest here", "止步于此"),
    ("from the step before", "上一步转化"),
    ("of the pool", "占客户池"),
    ("buyers making 80% of revenue", "贡献 80% 收入的买家"),
    ("super user", "超级用户"),
    ("spend 365d", "近 365 天消费"),
    ("entrants", "新增客户"),
    ("revenue", "收入"),
    ("spend", "投放花费"),
    ("CAC", "获客成本"),
    ("formula CLV", "公式 CLV"),
    ("model CLV", "模型 CLV"),
    ("CLV/CAC", "CLV/获客成本"),
    ("payback months", "回本月数"),
    (
        "share rate (customers who shared)",
        "分享率（分享过的客户）",
    ),
    (
        "invites per customer (shares / customers)",
        "人均邀请（分享次数 / 客户数）",
    ),
    (
        "invite conversion (referred / shares)",
        "邀请转化（被推荐 / 分享次数）",
    ),
    ("K-factor", "K 因子"),
    ("generations", "推荐代数"),
    ("top referrer", "推荐达人"),
    ("referrals", "推荐人数"),
    ("who bought", "其中购买"),
    ("their revenue", "其带来收入"),
    ("frequency", "年购买频次"),
    ("churn", "流失率"),
    ("lifetime (years)", "生命周期（年）"),
    ("CLV", "CLV"),
    ("month", "月份"),
    ("cost", "花费"),
    ("setting", "设置"),
    ("code", "代码"),
    // lifecycle and journey
    ("prospect", "潜客"),
    ("first_purchase", "首购"),
    ("repeat", "复购"),
    ("vip", "超级用户"),
    ("at_risk", "流失预警"),
    ("lost", "流失"),
    ("stranger", "陌生人"),
    ("engaged", "互动"),
    ("intent", "意向"),
    ("customer", "客户"),
    ("advocate", "推荐者"),
    ("Journey", "用户旅程"),
    ("By source channel", "按来源渠道"),
    (
        "Repurchase rate (buyers with 2+ purchase days)",
        "复购率（有 2 个及以上购买日的买家）",
    ),
    // segments, tags, customers, tokens
    ("segment", "分群"),
    ("purpose", "用途"),
    ("members", "成员数"),
    ("rule", "规则"),
    ("created by", "创建人"),
    ("since", "加入时间"),
    ("rfm", "RFM"),
    ("days since order", "距上次下单天数"),
    ("at", "时间"),
    ("change", "变化"),
    ("of", "所属"),
    ("cause", "原因"),
    ("tag", "标签"),
    ("family", "类别"),
    ("source", "来源"),
    ("action", "操作"),
    ("by", "操作人"),
    ("subject", "对象"),
    ("detail", "详情"),
    ("hash", "哈希"),
    ("role", "角色"),
    ("label", "备注"),
    ("created", "创建时间"),
    ("revoked", "吊销时间"),
    ("order", "订单"),
    ("amount", "金额"),
    ("discount", "优惠"),
    ("status", "状态"),
    ("event", "事件"),
    ("type", "类型"),
    ("name", "姓名"),
    ("male", "男"),
    ("female", "女"),
    ("other", "其他"),
    ("phone", "手机"),
    ("gender", "性别"),
    ("birthday", "生日"),
    ("region", "地区"),
    ("referrer", "推荐人"),
    ("joined", "加入时间"),
    ("RFM class", "RFM 分层"),
    ("opted out of marketing", "已退订营销"),
    ("orders", "订单数"),
    ("purchase days", "购买天数"),
    ("net spend", "净消费"),
    ("first order", "首单"),
    ("last order", "末单"),
    ("mean days between purchases", "平均购买间隔（天）"),
    ("orders with a coupon", "用券订单占比"),
    ("last interaction", "最近互动"),
    ("left", "流失时间"),
    ("referred", "推荐人数"),
    ("revenue of the referred", "被推荐人消费"),
    ("latest orders", "最近订单"),
    ("latest events", "最近事件"),
    ("latest changes:", "最近变化："),
    ("no changes recorded", "没有记录到变化"),
    ("the audit log holds nothing yet", "审计日志还是空的"),
    // notes
    (
        "A customer counts as reaching every stage up to their furthest: one who shared (advocate) without buying counts as reached for customer and repeat too.",
        "客户按其到达的最远阶段计入之前的每一个阶段：分享过（推荐者）但未购买的客户，也计为到达了“客户”和“复购”。",
    ),
    (
        "n/a: AOV and frequency need buyers in the 365 days; churn needs buyers in the 365 days before; lifetime and CLV need churn above 0.",
        "n/a：客单价和频次需要 365 天内有买家；流失率需要此前 365 天有买家；生命周期和 CLV 需要流失率大于 0。",
    ),
    (
        "By stage, a stage is where a customer stands on the as-of day, so some stages lack what a figure needs: prospects never bought (no AOV or frequency); a stage whose buyers all began within the 365 days (first purchasers always; in a young shop repeat, VIP and at-risk customers too) has no buyers the year before, so no churn; and a stage none of whose earlier buyers lapsed has churn 0, so no finite lifetime or CLV.",
        "按阶段切分时，阶段是客户在截至日所处的位置，有些阶段缺少指标所需的数据：潜客从未购买（无客单价和频次）；买家都在 365 天内才开始购买的阶段（首购客户必然如此，开店不久时复购、超级用户和流失预警客户也是）前一年没有买家，因此没有流失率；此前的买家无一流失的阶段流失率为 0，生命周期和 CLV 没有有限值。",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_read_in_the_forms_people_write() {
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("中文"), Some(Lang::Zh));
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
    }

    #[test]
    fn every_label_has_one_translation() {
        let mut seen = std::collections::HashSet::new();
        for (en, _) in ZH {
            assert!(seen.insert(en), "{en} twice");
        }
    }
}
