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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("unknown setting '{0}' (known: time_zone, repurchase_cycle_days, vip_rule)")]
    Unknown(String),
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Setting {
    pub const ALL: [Setting; 3] = [
        Setting::TimeZone,
        Setting::RepurchaseCycleDays,
        Setting::VipRule,
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
        }
    }

    pub fn default_value(self) -> String {
        match self {
            Setting::TimeZone => DEFAULT_TIME_ZONE.to_owned(),
            Setting::RepurchaseCycleDays => DEFAULT_REPURCHASE_CYCLE_DAYS.to_string(),
            Setting::VipRule => String::new(),
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
                .map_err(|e| invalid(e.to_string())),
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
        }
    }
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
}
