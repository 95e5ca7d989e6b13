//! A tenant's settings: the knobs the figures depend on, named and checked in one place.

use std::fmt;

use crate::lifecycle::{DEFAULT_REPURCHASE_CYCLE_DAYS, LifecycleSettings};
use crate::rule::Rule;
use crate::segment::pool::check_vip_rule;
use crate::time::{DEFAULT_TIME_ZONE, TenantZone};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// IANA zone whose midnights are the tenant's day boundaries.
    TimeZone,
    /// The repurchase cycle C of the lifecycle stages, in days.
    RepurchaseCycleDays,
    /// The tenant's own VIP rule (a segment rule); empty for none.
    VipRule,
    /// The language of the command line's tables and messages: `en` or `zh`.
    Lang,
    /// Whether two customers holding the same phone number are merged: `on` or `off`.
    MergePhone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error(
        "unknown setting '{0}' (known: time_zone, repurchase_cycle_days, vip_rule, lang, identity.merge_phone)"
    )]
    Unknown(String),
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Setting {
    pub const ALL: [Setting; 5] = [
        Setting::TimeZone,
        Setting::RepurchaseCycleDays,
        Setting::VipRule,
        Setting::Lang,
        Setting::MergePhone,
    ];

    pub fn parse(key: &str) -> Result<Setting, SettingError> {
        Setting::ALL
            .into_iter()
            .find(|s| s.key() == key.trim())
            .ok_or_else(|| SettingError::Unknown(key.trim().to_owned()))
    }

    pub fn key(self) -> &'static str {
        match self {
            Setting::TimeZone => "time_zone",
            Setting::RepurchaseCycleDays => "repurchase_cycle_days",
            Setting::VipRule => "vip_rule",
            Setting::Lang => "lang",
            Setting::MergePhone => "identity.merge_phone",
        }
    }

    pub fn default_value(self) -> String {
        match self {
            Setting::TimeZone => DEFAULT_TIME_ZONE.to_owned(),
            Setting::RepurchaseCycleDays => DEFAULT_REPURCHASE_CYCLE_DAYS.to_string(),
            Setting::VipRule => String::new(),
            Setting::Lang => "en".to_owned(),
            Setting::MergePhone => "on".to_owned(),
        }
    }

    /// Checks a value and returns it in its stored form.
    pub fn validate(self, value: &str) -> Result<String, SettingError> {
        let invalid = |reason: String| SettingError::Invalid {
            key: self.key(),
            reason,
        };
        let value = value.trim();
        match self {
            Setting::TimeZone => TenantZone::named(value)
                .map(|z| z.name().to_owned())
                .map_err(|e| {
                    invalid(match suggest_zone(value) {
                        Some(zone) => format!("{e}: did you mean {zone}?"),
                        None => format!("{e} (an IANA name such as Asia/Shanghai)"),
                    })
                }),
            Setting::RepurchaseCycleDays => match value.parse::<u32>() {
                Ok(days) if (1..=3650).contains(&days) => Ok(days.to_string()),
                _ => Err(invalid(format!(
                    "'{value}' is not a whole number of days from 1 to 3650"
                ))),
            },
            Setting::VipRule if value.is_empty() => Ok(String::new()),
            Setting::VipRule => check_vip_rule(value)
                .map(|rule| rule.to_string())
                .map_err(|e| invalid(e.to_string())),
            Setting::Lang => match value.to_lowercase().as_str() {
                "en" | "english" => Ok("en".to_owned()),
                "zh" | "zh-cn" | "zh_cn" | "中文" | "chinese" => Ok("zh".to_owned()),
                _ => Err(invalid(format!("'{value}' is not a language: en or zh"))),
            },
            Setting::MergePhone => match value.to_lowercase().as_str() {
                "on" | "true" | "yes" => Ok("on".to_owned()),
                "off" | "false" | "no" => Ok("off".to_owned()),
                _ => Err(invalid(format!("'{value}' is neither on nor off"))),
            },
        }
    }
}

/// Cities and names people give for the zone of mainland China, which has one: Asia/Shanghai
/// (there is no Asia/Beijing).
const CHINA: &[&str] = &[
    "beijing",
    "shanghai",
    "guangzhou",
    "shenzhen",
    "chengdu",
    "chongqing",
    "hangzhou",
    "wuhan",
    "nanjing",
    "tianjin",
    "xian",
    "xi'an",
    "suzhou",
    "changsha",
    "zhengzhou",
    "qingdao",
    "dalian",
    "xiamen",
    "kunming",
    "harbin",
    "shenyang",
    "hefei",
    "fuzhou",
    "jinan",
    "ningbo",
    "dongguan",
    "foshan",
    "china",
    "prc",
    "cst",
    "beijing time",
    "中国",
    "北京",
    "上海",
    "广州",
    "深圳",
    "成都",
    "重庆",
    "杭州",
    "武汉",
    "南京",
    "天津",
    "西安",
    "苏州",
    "北京时间",
];

/// The IANA zone someone most likely meant by a name that is not one: Asia/Shanghai for
/// mainland Chinese cities (`Asia/Beijing`, `Beijing`, `北京`), else the closest name by
/// edit distance (`asia/shangai` → Asia/Shanghai), if any is close.
pub fn suggest_zone(text: &str) -> Option<String> {
    let wanted = text.trim().to_lowercase().replace([' ', '-'], "_");
    let city = wanted
        .rsplit('/')
        .next()
        .unwrap_or(&wanted)
        .replace('_', " ");
    if CHINA.contains(&city.as_str()) {
        return Some(DEFAULT_TIME_ZONE.to_owned());
    }
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .collect();
    // A known city under another region (`Europe/Tokyo`) or alone (`tokyo`).
    if let Some(exact) = names.iter().find(|n| {
        n.rsplit('/')
            .next()
            .is_some_and(|c| c.to_lowercase().replace('_', " ") == city)
    }) {
        return Some(exact.clone());
    }
    let (best, distance) = names
        .iter()
        .map(|n| (n, edit_distance(&wanted, &n.to_lowercase())))
        .min_by_key(|(_, d)| *d)?;
    (distance <= (wanted.chars().count() / 4).max(2)).then(|| best.clone())
}

/// Levenshtein distance, in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The lifecycle settings from stored `(key, value)` pairs; absent or unreadable ones
/// take their defaults.
pub fn lifecycle_settings<'a>(
    stored: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> LifecycleSettings {
    let mut settings = LifecycleSettings::default();
    for (key, value) in stored {
        if key == Setting::RepurchaseCycleDays.key()
            && let Ok(days) = value.parse()
        {
            settings.repurchase_cycle_days = days;
        }
    }
    settings
}

/// The tenant's VIP rule from stored `(key, value)` pairs, if one is set (a stored rule
/// that no longer reads is reported, not ignored).
pub fn vip_rule<'a>(
    stored: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<Rule>, SettingError> {
    for (key, value) in stored {
        if key == Setting::VipRule.key() && !value.trim().is_empty() {
            return check_vip_rule(value)
                .map(Some)
                .map_err(|e| SettingError::Invalid {
                    key: Setting::VipRule.key(),
                    reason: e.to_string(),
                });
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_before_they_are_stored() {
        assert_eq!(
            Setting::parse("repurchase_cycle_days").and_then(|s| s.validate(" 45 ")),
            Ok("45".to_owned())
        );
        assert!(Setting::RepurchaseCycleDays.validate("0").is_err());
        assert!(Setting::RepurchaseCycleDays.validate("4.5").is_err());
        assert!(Setting::TimeZone.validate("Mars/Base").is_err());
        assert_eq!(
            Setting::TimeZone.validate("Asia/Beijing"),
            Err(SettingError::Invalid {
                key: "time_zone",
                reason: "unknown time zone 'Asia/Beijing': did you mean Asia/Shanghai?".into()
            })
        );
        assert_eq!(
            Setting::VipRule.validate("net_spend >= 5000  AND orders>3"),
            Ok("net_spend >= 5000 and orders > 3".to_owned())
        );
        assert!(Setting::VipRule.validate("stage = \"repeat\"").is_err());
        assert!(Setting::VipRule.validate("net_spend >=").is_err());
        assert_eq!(Setting::VipRule.validate(" "), Ok(String::new()));
        assert_eq!(
            Setting::parse("vip"),
            Err(SettingError::Unknown("vip".into()))
        );
        assert_eq!(
            lifecycle_settings([("repurchase_cycle_days", "45")]).repurchase_cycle_days,
            45
        );
    }

    #[test]
    fn a_zone_that_is_not_one_suggests_the_nearest_iana_name() {
        for city in ["Asia/Beijing", "beijing", "北京", "Asia/Shenzhen", "China"] {
            assert_eq!(
                suggest_zone(city).as_deref(),
                Some("Asia/Shanghai"),
                "{city}"
            );
        }
        assert_eq!(
            suggest_zone("asia/shangai").as_deref(),
            Some("Asia/Shanghai")
        );
        assert_eq!(suggest_zone("Tokyo").as_deref(), Some("Asia/Tokyo"));
        assert_eq!(
            suggest_zone("Europe/Londn").as_deref(),
            Some("Europe/London")
        );
        assert_eq!(suggest_zone("Mars/Base"), None);
    }
}
