//! Source and sales channels: normalised names, so `抖音`, `Douyin` and `douyin` are one channel.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a channel name (letters, digits, '_' or '-', up to 64)")]
pub struct ChannelError(pub String);

/// A channel name in snake_case: douyin, xiaohongshu, zhihu, store, official_account,
/// mini_program, referral, or a merchant's own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Channel(CompactString);

/// The names merchants' exports use for the well-known channels.
const ALIASES: &[(&str, &str)] = &[
    ("抖音", "douyin"),
    ("tiktok", "douyin"),
    ("小红书", "xiaohongshu"),
    ("red", "xiaohongshu"),
    ("知乎", "zhihu"),
    ("门店", "store"),
    ("线下", "store"),
    ("线下门店", "store"),
    ("公众号", "official_account"),
    ("服务号", "official_account"),
    ("小程序", "mini_program"),
    ("miniprogram", "mini_program"),
    ("转介绍", "referral"),
    ("推荐", "referral"),
    ("老带新", "referral"),
    ("直播", "live_stream"),
    ("企业微信", "wecom"),
    ("淘宝", "taobao"),
    ("天猫", "tmall"),
    ("有赞", "youzan"),
    ("微盟", "weimob"),
    ("视频号", "wechat_channels"),
    ("微信视频号", "wechat_channels"),
    ("朋友推荐", "referral"),
    ("好友推荐", "referral"),
    ("老客推荐", "referral"),
    ("企微", "wecom"),
    ("微信", "wechat"),
    ("个人微信", "wechat"),
    ("朋友圈", "moments"),
    ("社群", "wechat_group"),
    ("微信群", "wechat_group"),
    ("拼多多", "pdd"),
    ("京东", "jd"),
    ("快手", "kuaishou"),
    ("微博", "weibo"),
    ("哔哩哔哩", "bilibili"),
    ("b站", "bilibili"),
    ("美团", "meituan"),
    ("大众点评", "dianping"),
    ("抖音直播", "douyin_live"),
    ("抖店", "douyin"),
];

/// The other names of the well-known channels, as (name, channel).
pub fn aliases() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALIASES.iter().copied()
}

/// The well-known channels, as kept.
pub const KNOWN: &[&str] = &[
    "douyin",
    "xiaohongshu",
    "zhihu",
    "store",
    "official_account",
    "mini_program",
    "referral",
    "live_stream",
    "wecom",
    "taobao",
    "tmall",
    "youzan",
    "weimob",
    "wechat_channels",
    "wechat",
    "moments",
    "wechat_group",
    "pdd",
    "jd",
    "kuaishou",
    "weibo",
    "bilibili",
    "meituan",
    "dianping",
    "douyin_live",
];

/// The name among `names` closest to `text` (a typo, `douyn` → douyin), if one is close.
pub fn closest<'a>(text: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let text = text.trim().to_lowercase();
    let (best, distance) = names
        .into_iter()
        .map(|n| (n, crate::settings::edit_distance(&text, n)))
        .min_by_key(|(_, d)| *d)?;
    (distance <= (text.chars().count() / 3).max(2)).then_some(best)
}

impl Channel {
    pub fn parse(text: &str) -> Result<Channel, ChannelError> {
        let s = text.trim();
        // A name written as it is kept (most rows of most files) needs no lowering, and a
        // channel is held inline: one per order row, so no allocation either.
        let canonical_form = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let lower: Cow<'_, str> = if canonical_form {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(s.to_lowercase().replace([' ', '-'], "_"))
        };
        if let Some((_, canonical)) = ALIASES.iter().find(|(alias, _)| *alias == lower) {
            return Ok(Channel(CompactString::new(canonical)));
        }
        let valid = !lower.is_empty()
            && lower.len() <= 64
            && lower.chars().all(|c| c.is_alphanumeric() || c == '_');
        if valid {
            Ok(Channel(CompactString::from(lower)))
        } else {
            Err(ChannelError(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_channel_suggests_the_closest_known_one() {
        assert_eq!(closest("douyn", KNOWN.iter().copied()), Some("douyin"));
        assert_eq!(
            closest("xiaohongsu", KNOWN.iter().copied()),
            Some("xiaohongshu")
        );
        assert_eq!(closest("myspace", KNOWN.iter().copied()), None);
    }

    #[test]
    fn well_known_channels_are_recognised_in_either_language() {
        assert_eq!(Channel::parse("抖音").expect("valid").as_str(), "douyin");
        assert_eq!(
            Channel::parse(" Douyin ").expect("valid").as_str(),
            "douyin"
        );
        assert_eq!(
            Channel::parse("Official Account").expect("valid").as_str(),
            "official_account"
        );
        assert_eq!(Channel::parse("门店").expect("valid").as_str(), "store");
        for (name, channel) in [
            ("视频号", "wechat_channels"),
            ("公众号", "official_account"),
            ("小程序", "mini_program"),
            ("企业微信", "wecom"),
            ("直播", "live_stream"),
            ("朋友推荐", "referral"),
            ("拼多多", "pdd"),
        ] {
            assert_eq!(Channel::parse(name).expect("valid").as_str(), channel);
        }
        // Every alias names a channel the suggestions know.
        for (alias, channel) in ALIASES {
            assert!(KNOWN.contains(channel), "{alias} → {channel}");
        }
    }

    #[test]
    fn a_channel_with_punctuation_is_rejected() {
        assert!(Channel::parse("").is_err());
        assert!(Channel::parse("a;b").is_err());
    }
}
