//! The console's words in its two languages, and numbers as operators read them: money
//! as ¥ with 万 and 亿 in Chinese, shares as percentages, days in the tenant's zone.

use siyu_core::money::Money;

use crate::wording::thousands;

/// The console's language: Chinese unless the operator switched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The language a `siyu_lang` cookie value names; Chinese by default.
    pub fn from_cookie(value: Option<&str>) -> Lang {
        match value {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of the page.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The console's word for `key`, in this language.
    pub fn t(self, key: Key) -> &'static str {
        let (zh, en) = words(key);
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// Money as the operator reads it: `¥1,234.56`; in Chinese from ten thousand yuan on,
    /// `¥12.35万` and `¥1.23亿`.
    pub fn money(self, m: Money) -> String {
        let fen = m.fen();
        let sign = if fen < 0 { "-" } else { "" };
        let abs = fen.unsigned_abs();
        if self == Lang::Zh && abs >= 1_000_000 {
            let (unit, per) = if abs >= 10_000_000_000 {
                ("亿", 10_000_000_000u64)
            } else {
                ("万", 1_000_000u64)
            };
            // Two decimals of the unit, rounded half up.
            let hundredths = (u128::from(abs) * 100 + u128::from(per) / 2) / u128::from(per);
            return format!(
                "{sign}¥{}.{:02}{unit}",
                thousands(u64::try_from(hundredths / 100).unwrap_or(u64::MAX)),
                hundredths % 100
            );
        }
        format!("{sign}¥{}.{:02}", thousands(abs / 100), abs % 100)
    }

    /// A count with thousands separators.
    pub fn count(self, n: u64) -> String {
        thousands(n)
    }

    /// A share as a percentage with one decimal, `–` when there is none.
    pub fn share(self, s: Option<f64>) -> String {
        match s {
            Some(s) if s.is_finite() => format!("{:.1}%", s * 100.0),
            _ => "–".to_owned(),
        }
    }
}

/// The console's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Console,
    Overview,
    Rfm,
    SignIn,
    SignOut,
    Tenant,
    User,
    Password,
    WrongSignIn,
    LockedSignIn,
    Pool,
    Buyers,
    BuyerShare,
    Gmv,
    Aov,
    Repurchase,
    PaidOrders,
    GmvByMonth,
    ByChannel,
    Channel,
    Customers,
    Conversion,
    Unknown,
    Class,
    Share,
    Spend,
    ShareOfSpend,
    RfmAsOf,
    NoOrders,
    Language,
    Month,
    OrderDays,
    Segments,
    Campaigns,
    Segment,
    Members,
    Rule,
    NoSegments,
    NewSegment,
    SegmentName,
    RuleHelp,
    ForAnalysis,
    Create,
    RuleMistake,
    WouldHold,
    CustomersNow,
    DownloadCsv,
    Customer,
    Stage,
    PurchaseDays,
    DaysSinceOrder,
    Spend365,
    NextPage,
    NotFound,
    CustomersMenu,
    Search,
    SearchHint,
    Joined,
    Orders,
    NetSpend,
    LastOrder,
    NoneFound,
    Attributes,
    Name,
    Phone,
    Gender,
    Birthday,
    Region,
    SourceChannel,
    Referrer,
    Tags,
    TagSource,
    Since,
    AddTag,
    Remove,
    MarketingOptOut,
    OptOut,
    OptIn,
    ExportData,
    EraseData,
    EraseConfirm,
    EraseConfirmMismatch,
    RecentOrders,
    RecentEvents,
    Amount,
    Status,
    EventType,
    Time,
    ModelClv,
    PAlive,
    MeanInterval,
    AdminOnly,
    PhoneMasked,
    Lifecycle,
    Cohorts,
    StageCounts,
    Journey,
    Reached,
    StepConversion,
    AtRiskList,
    LostList,
    CohortMonth,
    MonthsAfter,
    RepurchaseByChannel,
    Repeaters,
    Settings,
    Setting,
    Value,
    Save,
    Users,
    LockedUntil,
    AddUser,
    Delete,
    NotYourself,
    ApiTokens,
    Label,
    Created,
    Revoked,
    Revoke,
    AddToken,
    NewTokenOnce,
    AuditLog,
    Actor,
    Action,
    Detail,
    AdminsOnly,
    CountBusy,
    GmvByDay,
    GmvByWeek,
    WeekOf,
    ByDay,
    ByWeek,
    ByMonth,
    NewestPeriods,
    BadGrain,
    CountAgedBefore,
    CountAgedAfter,
    Clv,
    NoModel,
    FitModel,
    Model,
    CalibrationEnd,
    FittedAt,
    HoldoutCheck,
    Predicted,
    Actual,
    Frequency,
    TopClv,
    CannotFit,
    GmvTree,
    Before,
    After,
    Change,
    LmdiShare,
    WhatIf,
    Projected,
    Compute,
    From,
    To,
    CompareFrom,
    CompareTo,
    FUsers,
    FRetention,
    FConversion,
    FPurchases,
    FAov,
    Channels,
    Referrals,
    Entrants,
    Revenue,
    ChannelSpend,
    Cac,
    FormulaClv,
    ModelClvShort,
    ClvToCac,
    Payback,
    Period,
    Sharers,
    ShareRate,
    Referred,
    ReferredBuyers,
    InviteConversion,
    KFactor,
    Generations,
    Generation,
    TopReferrers,
    SetSpend,
    SpendMonth,
    SpendYuan,
    // Segment history, tag rules, RFM members and quintiles, lifecycle flows, phones.
    TagRules,
    NoTagRules,
    NewTagRule,
    TagName,
    FieldList,
    Field,
    History,
    NoHistory,
    Occasion,
    NewerPage,
    OlderPage,
    Quintiles,
    Score,
    RfGrid,
    Flows,
    FlowsAbout,
    NoFlows,
    NewToPool,
    LeftPool,
    FromStage,
    ToStage,
    RevealPhone,
    PhoneRevealed,
    MembersByDay,
    Day,
    AddressLocked,
}

fn words(key: Key) -> (&'static str, &'static str) {
    match key {
        Key::Console => ("私域运营台", "siyu console"),
        Key::Overview => ("概览", "Overview"),
        Key::Rfm => ("RFM 分层", "RFM"),
        Key::SignIn => ("登录", "Sign in"),
        Key::SignOut => ("退出", "Sign out"),
        Key::Tenant => ("商户", "Tenant"),
        Key::User => ("用户名", "User name"),
        Key::Password => ("密码", "Password"),
        Key::WrongSignIn => ("用户名或密码不正确", "Wrong user name or password"),
        Key::LockedSignIn => (
            "失败次数过多，账号已暂时锁定，请稍后再试",
            "Too many failed sign-ins: locked for a while, try again later",
        ),
        Key::Pool => ("客户池", "Customers"),
        Key::Buyers => ("购买客户", "Buyers"),
        Key::BuyerShare => ("购买转化率", "Buyers / pool"),
        Key::Gmv => ("GMV", "GMV"),
        Key::Aov => ("客单价", "AOV"),
        Key::Repurchase => ("复购率", "Repurchase rate"),
        Key::PaidOrders => ("已付订单", "Paid orders"),
        Key::GmvByMonth => ("月度 GMV", "GMV by month"),
        Key::ByChannel => ("按来源渠道", "By source channel"),
        Key::Channel => ("渠道", "Channel"),
        Key::Customers => ("客户数", "Customers"),
        Key::Conversion => ("转化率", "Conversion"),
        Key::Unknown => ("未知", "unknown"),
        Key::Class => ("分层", "Class"),
        Key::Share => ("占比", "Share"),
        Key::Spend => ("消费金额", "Spend"),
        Key::ShareOfSpend => ("金额占比", "Share of spend"),
        Key::RfmAsOf => ("截至", "As of"),
        Key::NoOrders => ("还没有订单", "No orders yet"),
        Key::Language => ("English", "中文"),
        Key::Month => ("月份", "Month"),
        Key::OrderDays => ("订单日期", "Order days"),
        Key::Segments => ("人群分组", "Segments"),
        Key::Campaigns => ("营销活动", "Campaigns"),
        Key::Segment => ("分组", "Segment"),
        Key::Members => ("成员", "Members"),
        Key::Rule => ("规则", "Rule"),
        Key::NoSegments => ("还没有分组", "No segments yet"),
        Key::NewSegment => ("新建分组", "New segment"),
        Key::SegmentName => ("分组名称", "Name"),
        Key::RuleHelp => (
            "例如 orders >= 2 and days_since_order > 60（文字用双引号）；字段见 docs/definitions.md",
            "e.g. orders >= 2 and days_since_order > 60 (text in double quotes); fields in docs/definitions.md",
        ),
        Key::ForAnalysis => (
            "仅用于分析（包含已退订营销的客户）",
            "For analysis only (keeps customers who opted out of marketing)",
        ),
        Key::Create => ("创建", "Create"),
        Key::RuleMistake => ("规则有误", "The rule does not read"),
        Key::WouldHold => ("当前符合条件：", "It holds"),
        Key::CustomersNow => ("位客户", "customers now"),
        Key::DownloadCsv => ("下载 CSV", "Download CSV"),
        Key::Customer => ("客户", "Customer"),
        Key::Stage => ("阶段", "Stage"),
        Key::PurchaseDays => ("购买天数", "Purchase days"),
        Key::DaysSinceOrder => ("距上次购买天数", "Days since order"),
        Key::Spend365 => ("近一年消费", "Spend, 365 days"),
        Key::NextPage => ("下一页", "Next page"),
        Key::NotFound => ("没有这个页面", "No such page"),
        Key::CustomersMenu => ("客户", "Customers"),
        Key::Search => ("搜索", "Search"),
        Key::SearchHint => (
            "客户ID、手机号或姓名开头",
            "Customer id, phone, or the start of a name",
        ),
        Key::Joined => ("加入时间", "Joined"),
        Key::Orders => ("订单数", "Orders"),
        Key::NetSpend => ("累计消费", "Spend"),
        Key::LastOrder => ("最近下单", "Last order"),
        Key::NoneFound => ("没有找到客户", "No customer found"),
        Key::Attributes => ("基本信息", "Attributes"),
        Key::Name => ("姓名", "Name"),
        Key::Phone => ("手机号", "Phone"),
        Key::Gender => ("性别", "Gender"),
        Key::Birthday => ("生日", "Birthday"),
        Key::Region => ("地区", "Region"),
        Key::SourceChannel => ("来源渠道", "Source channel"),
        Key::Referrer => ("推荐人", "Referred by"),
        Key::Tags => ("标签", "Tags"),
        Key::TagSource => ("来源", "Source"),
        Key::Since => ("起始", "Since"),
        Key::AddTag => ("添加标签", "Add tag"),
        Key::Remove => ("移除", "Remove"),
        Key::MarketingOptOut => ("已退订营销", "Opted out of marketing"),
        Key::OptOut => ("记录退订营销", "Record an opt-out"),
        Key::OptIn => ("撤销退订", "Withdraw the opt-out"),
        Key::ExportData => ("导出个人数据", "Export personal data"),
        Key::EraseData => ("删除个人数据", "Erase personal data"),
        Key::EraseConfirm => (
            "输入客户ID确认删除（不可恢复）",
            "Type the customer's id to confirm (cannot be undone)",
        ),
        Key::EraseConfirmMismatch => (
            "确认的客户ID不一致，未删除",
            "The id typed does not match: nothing was erased",
        ),
        Key::RecentOrders => ("最近订单", "Recent orders"),
        Key::RecentEvents => ("最近互动", "Recent events"),
        Key::Amount => ("金额", "Amount"),
        Key::Status => ("状态", "Status"),
        Key::EventType => ("类型", "Type"),
        Key::Time => ("时间", "Time"),
        Key::ModelClv => ("模型预测终身价值", "Model lifetime value"),
        Key::PAlive => ("活跃概率", "P(alive)"),
        Key::MeanInterval => ("平均复购间隔（天）", "Mean interval (days)"),
        Key::AdminOnly => ("管理员操作", "Admin"),
        Key::PhoneMasked => ("手机号已脱敏显示", "Phones are shown masked"),
        Key::Lifecycle => ("生命周期", "Lifecycle"),
        Key::Cohorts => ("同期群", "Cohorts"),
        Key::StageCounts => ("各阶段客户", "Customers by stage"),
        Key::Journey => ("旅程漏斗", "Journey funnel"),
        Key::Reached => ("到达", "Reached"),
        Key::StepConversion => ("环节转化", "Step conversion"),
        Key::AtRiskList => ("流失预警客户（前 50）", "At risk (first 50)"),
        Key::LostList => ("已流失客户（前 50）", "Lost (first 50)"),
        Key::CohortMonth => ("首购月份", "First purchase month"),
        Key::MonthsAfter => ("之后第 N 月复购占比", "Share buying again N months after"),
        Key::RepurchaseByChannel => ("各渠道复购率", "Repurchase rate by channel"),
        Key::Repeaters => ("复购客户", "Repeat buyers"),
        Key::Settings => ("设置", "Settings"),
        Key::Setting => ("设置项", "Setting"),
        Key::Value => ("值", "Value"),
        Key::Save => ("保存", "Save"),
        Key::Users => ("运营账号", "Console users"),
        Key::LockedUntil => ("锁定至", "Locked until"),
        Key::AddUser => ("添加账号", "Add a user"),
        Key::Delete => ("删除", "Delete"),
        Key::NotYourself => ("不能删除自己的账号", "You cannot delete yourself"),
        Key::ApiTokens => ("API 令牌", "API tokens"),
        Key::Label => ("用途", "Label"),
        Key::Created => ("创建时间", "Created"),
        Key::Revoked => ("已吊销", "Revoked"),
        Key::Revoke => ("吊销", "Revoke"),
        Key::AddToken => ("创建令牌", "Create a token"),
        Key::NewTokenOnce => (
            "新令牌（只显示这一次，请妥善保存）：",
            "The new token (shown this once; keep it secret):",
        ),
        Key::AuditLog => ("审计日志", "Audit log"),
        Key::Actor => ("操作者", "By"),
        Key::Action => ("操作", "Action"),
        Key::Detail => ("详情", "Detail"),
        Key::Channels => ("渠道质量", "Channels"),
        Key::Referrals => ("裂变推荐", "Referrals"),
        Key::Entrants => ("新进客户", "Entrants"),
        Key::Revenue => ("贡献 GMV", "Revenue"),
        Key::ChannelSpend => ("投放花费", "Spend"),
        Key::Cac => ("获客成本", "CAC"),
        Key::FormulaClv => ("公式 CLV", "Formula CLV"),
        Key::ModelClvShort => ("模型 CLV", "Model CLV"),
        Key::ClvToCac => ("CLV/CAC", "CLV/CAC"),
        Key::Payback => ("回本月数", "Payback (months)"),
        Key::Period => ("期间", "Period"),
        Key::Sharers => ("分享客户", "Sharers"),
        Key::ShareRate => ("分享率", "Share rate"),
        Key::Referred => ("被推荐加入", "Referred"),
        Key::ReferredBuyers => ("被推荐成交", "Referred buyers"),
        Key::InviteConversion => ("邀请转化率", "Invite conversion"),
        Key::KFactor => ("K 因子", "K-factor"),
        Key::Generations => ("各代客户数", "Customers per generation"),
        Key::Generation => ("代", "Generation"),
        Key::TopReferrers => ("推荐达人", "Top referrers"),
        Key::SetSpend => ("录入投放花费", "Record spend"),
        Key::SpendMonth => ("月份 (YYYY-MM)", "Month (YYYY-MM)"),
        Key::SpendYuan => ("金额（元）", "Amount (yuan)"),
        Key::GmvTree => ("GMV 拆解", "GMV factors"),
        Key::Before => ("对比期", "Before"),
        Key::After => ("本期", "After"),
        Key::Change => ("变化", "Change"),
        Key::LmdiShare => ("贡献（LMDI）", "Share of the change (LMDI)"),
        Key::WhatIf => ("假设调整", "What if"),
        Key::Projected => ("预计 GMV", "Projected GMV"),
        Key::Compute => ("计算", "Compute"),
        Key::From => ("开始", "From"),
        Key::To => ("结束", "To"),
        Key::CompareFrom => ("对比开始", "Compared from"),
        Key::CompareTo => ("对比结束", "Compared to"),
        Key::FUsers => ("客户数", "Users"),
        Key::FRetention => ("留存率", "Retention"),
        Key::FConversion => ("转化率", "Conversion"),
        Key::FPurchases => ("人均购买次数", "Purchases per buyer"),
        Key::FAov => ("客单价", "AOV"),
        Key::Clv => ("终身价值", "Lifetime value"),
        Key::NoModel => ("还没有拟合模型", "No model fitted yet"),
        Key::FitModel => ("用全部订单拟合模型", "Fit the model on every order"),
        Key::Model => ("模型参数", "The fitted model"),
        Key::CalibrationEnd => ("校准截止", "Calibration end"),
        Key::FittedAt => ("拟合时间", "Fitted at"),
        Key::HoldoutCheck => (
            "留出检验：预测与实际复购（后 26 周）",
            "Holdout check: predicted and actual repeat purchases (last 26 weeks held out)",
        ),
        Key::Predicted => ("预测", "Predicted"),
        Key::Actual => ("实际", "Actual"),
        Key::Frequency => ("校准期复购次数", "Repeat purchases in calibration"),
        Key::TopClv => ("预测价值最高的客户", "Top customers by predicted value"),
        Key::CannotFit => ("无法拟合", "Cannot fit"),
        Key::CountAgedBefore => ("（按 ", "(in the pool as it was "),
        Key::CountAgedAfter => (
            " 秒前的客户池统计，正在更新）",
            " s ago; a fresh count is on its way)",
        ),
        Key::GmvByDay => ("每日 GMV", "GMV by day"),
        Key::GmvByWeek => ("每周 GMV", "GMV by week"),
        Key::WeekOf => ("周（自周一）", "Week of (Monday)"),
        Key::ByDay => ("按日", "By day"),
        Key::ByWeek => ("按周", "By week"),
        Key::ByMonth => ("按月", "By month"),
        Key::NewestPeriods => ("仅显示最近的周期：", "The newest periods only:"),
        Key::BadGrain => (
            "GMV 只能按 day、week 或 month 查看",
            "GMV is shown by day, week or month only",
        ),
        Key::CountBusy => (
            "正在统计上一条规则，请稍候",
            "Still counting the rule before: a moment",
        ),
        Key::AdminsOnly => (
            "账号、令牌和审计日志仅管理员可见",
            "Users, tokens and the audit log are for admins",
        ),
        // Segment history, tag rules, RFM members and quintiles, lifecycle flows, phones.
        Key::TagRules => ("规则标签", "Tag rules"),
        Key::NoTagRules => ("还没有规则标签", "No tag rules yet"),
        Key::NewTagRule => ("新建规则标签", "New tag rule"),
        Key::TagName => ("标签名称", "Tag"),
        Key::FieldList => ("可用字段", "Fields a rule may use"),
        Key::Field => ("字段", "Field"),
        Key::History => ("进出记录", "Entries and exits"),
        Key::NoHistory => ("还没有进出记录", "No entries or exits yet"),
        Key::Occasion => ("原因", "Occasion"),
        Key::NewerPage => ("较新", "Newer"),
        Key::OlderPage => ("较早", "Older"),
        Key::Quintiles => (
            "五分位得分（5 最好）：各得分的客户数",
            "Quintile scores (5 is best): customers per score",
        ),
        Key::Score => ("得分", "Score"),
        Key::Flows => ("阶段流转", "Stage flows"),
        Key::FlowsAbout => (
            "期间内从一个阶段转到另一个阶段的客户数（按记录的阶段变化）：",
            "Customers who moved from one stage to another (from the recorded changes of stage):",
        ),
        Key::NoFlows => ("这段期间没有阶段变化", "No changes of stage in this period"),
        Key::NewToPool => ("新进客户", "New to the pool"),
        Key::LeftPool => ("移出客户池", "Left the pool"),
        Key::FromStage => ("从", "From"),
        Key::ToStage => ("到", "To"),
        Key::RevealPhone => ("查看完整号码", "Show the number"),
        Key::MembersByDay => ("每日人数（当天结束时）", "Members at the end of each day"),
        Key::Day => ("日期", "Day"),
        Key::AddressLocked => (
            "此网络地址登录失败次数过多，请 15 分钟后再试",
            "Too many failed sign-ins from this address: try again in 15 minutes",
        ),
        Key::PhoneRevealed => (
            "完整号码，本次查看已记入审计日志",
            "shown whole; this view is in the audit log",
        ),
        Key::RfGrid => ("R × F 五分位客户分布", "Customers by R and F score"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_operators_read_it() {
        let zh = Lang::Zh;
        assert_eq!(zh.money(Money::from_fen(123_456)), "¥1,234.56");
        assert_eq!(zh.money(Money::from_fen(999_999)), "¥9,999.99");
        assert_eq!(zh.money(Money::from_fen(1_000_000)), "¥1.00万");
        assert_eq!(zh.money(Money::from_fen(123_456_789)), "¥123.46万");
        assert_eq!(zh.money(Money::from_fen(12_345_678_900)), "¥1.23亿");
        assert_eq!(zh.money(Money::from_fen(-1_500_000)), "-¥1.50万");
        assert_eq!(
            Lang::En.money(Money::from_fen(123_456_789)),
            "¥1,234,567.89"
        );
        assert_eq!(zh.count(1_234_567), "1,234,567");
        assert_eq!(zh.share(Some(0.1234)), "12.3%");
        assert_eq!(zh.share(None), "–");
    }
}
