//! Time: UTC inside, the tenant's zone at day boundaries and for naive input.

use std::fmt;

pub use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// The default zone of a tenant, per DESIGN.md.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("empty time")]
    Empty,
    #[error(
        "'{0}' is not a time (expected RFC 3339, YYYY-MM-DD HH:MM:SS, YYYY-MM-DD, YYYY/M/D H:MM, 2026年5月1日 9:30 or seconds since the epoch)"
    )]
    Unparseable(String),
    #[error("'{0}' is not a real date or time of day")]
    OutOfRange(String),
    #[error("unknown time zone '{0}'")]
    UnknownZone(String),
    #[error("'{0}' is outside the times accepted, 1970-01-01 00:00:00 to 2100-12-31 23:59:59 UTC")]
    OutsideTimes(String),
    #[error("'{0}' is outside the days accepted, 1900-01-01 to 2100-12-31")]
    OutsideDays(String),
}

/// The first instant siyu accepts (an order, an event, a join): the Unix epoch.
pub const EARLIEST: Timestamp = Timestamp::constant(0, 0);
/// The first instant past those siyu accepts: 2101-01-01 00:00:00 UTC. Every figure's
/// day arithmetic (a day after, 365 days before, a month ahead) then stays far inside
/// what the calendar types hold.
pub const END_OF_TIMES: Timestamp = Timestamp::constant(4_133_980_800, 0);
/// The days accepted as input (birthdays, as-of days, periods): 1900-01-01 to 2100-12-31.
pub const FIRST_DAY: Date = Date::constant(1900, 1, 1);
pub const LAST_DAY: Date = Date::constant(2100, 12, 31);

/// A tenant's time zone: reads naive times as local and says which local day an instant falls on.
#[derive(Clone)]
pub struct TenantZone {
    name: String,
    tz: TimeZone,
    /// Since when the zone keeps one offset for good (seconds east of UTC): Asia/Shanghai
    /// since 1991. Days of later instants are plain arithmetic, as figures over millions
    /// of orders need.
    fixed: Option<(Timestamp, i64)>,
}

impl fmt::Debug for TenantZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TenantZone").field(&self.name).finish()
    }
}

impl Default for TenantZone {
    fn default() -> Self {
        TenantZone::named(DEFAULT_TIME_ZONE).expect("the default zone is in the bundled database")
    }
}

impl TenantZone {
    /// A zone by its IANA name (`Asia/Shanghai`, `UTC`, `America/New_York`).
    pub fn named(name: &str) -> Result<TenantZone, TimeError> {
        let tz = TimeZone::get(name).map_err(|_| TimeError::UnknownZone(name.to_owned()))?;
        let fixed = if tz.following(Timestamp::now()).next().is_some() {
            None
        } else {
            let since = tz
                .preceding(Timestamp::MAX)
                .next()
                .map_or(Timestamp::MIN, |t| t.timestamp());
            Some((since, i64::from(tz.to_offset(since).seconds())))
        };
        Ok(TenantZone {
            name: name.to_owned(),
            tz,
            fixed,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local calendar day of an instant.
    pub fn day_of(&self, ts: Timestamp) -> Date {
        match self.fixed {
            Some((since, offset)) if ts >= since => {
                civil_from_days((ts.as_second() + offset).div_euclid(86_400))
                    .unwrap_or_else(|| self.tz.to_datetime(ts).date())
            }
            _ => self.tz.to_datetime(ts).date(),
        }
    }

    /// The instant a local day begins.
    pub fn start_of(&self, day: Date) -> Timestamp {
        self.local_to_utc(day.to_datetime(jiff::civil::Time::midnight()))
    }

    /// The local date and time of an instant.
    pub fn datetime_of(&self, ts: Timestamp) -> DateTime {
        self.tz.to_datetime(ts)
    }

    /// The instant of a local date and time (a time skipped or repeated by a change of
    /// offset resolves to the earlier offset).
    pub fn instant_of(&self, dt: DateTime) -> Timestamp {
        self.local_to_utc(dt)
    }

    fn local_to_utc(&self, dt: DateTime) -> Timestamp {
        if let Some(ts) = self.fixed_local_to_utc(dt) {
            return ts;
        }
        // A local time skipped or repeated by a DST change resolves like most
        // systems do (the earlier offset); the tenant zone of most merchants has none.
        self.tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .unwrap_or(Timestamp::MIN)
    }

    /// A local time as UTC by arithmetic, where it falls in the zone's last, fixed offset
    /// (imports read millions of naive times; the zone lookup is most of it).
    fn fixed_local_to_utc(&self, dt: DateTime) -> Option<Timestamp> {
        let (since, offset) = self.fixed?;
        let local = days_from_civil(dt.year(), dt.month(), dt.day()) * 86_400
            + i64::from(dt.hour()) * 3_600
            + i64::from(dt.minute()) * 60
            + i64::from(dt.second());
        Timestamp::new(local - offset, dt.subsec_nanosecond())
            .ok()
            .filter(|ts| *ts >= since)
    }

    /// Parses RFC 3339 (`2024-05-01T09:30:00+08:00`, `…Z`), `YYYY-MM-DD HH:MM:SS`,
    /// `YYYY-MM-DD` and Taobao's `YYYY/M/D H:MM`. Times without an offset are local to this zone.
    pub fn parse_timestamp(&self, text: &str) -> Result<Timestamp, TimeError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(TimeError::Empty);
        }
        if let Some(ts) = epoch(s) {
            return ts;
        }
        let parsed = scan(s.as_bytes()).ok_or_else(|| TimeError::Unparseable(s.to_owned()))?;
        let out_of_range = || TimeError::OutOfRange(s.to_owned());
        let date = Date::new(parsed.year, parsed.month, parsed.day).map_err(|_| out_of_range())?;
        let time = jiff::civil::Time::new(parsed.hour, parsed.minute, parsed.second, parsed.nanos)
            .map_err(|_| out_of_range())?;
        let dt = date.to_datetime(time);
        let ts = match parsed.offset_seconds {
            None => self.local_to_utc(dt),
            Some(secs) => {
                let offset = jiff::tz::Offset::from_seconds(secs).map_err(|_| out_of_range())?;
                offset
                    .to_timestamp(dt)
                    .map_err(|_| TimeError::OutsideTimes(s.to_owned()))?
            }
        };
        if !(EARLIEST..END_OF_TIMES).contains(&ts) {
            return Err(TimeError::OutsideTimes(s.to_owned()));
        }
        Ok(ts)
    }

    /// Parses a plain calendar day, `YYYY-MM-DD` (or `YYYY/M/D`).
    pub fn parse_day(text: &str) -> Result<Date, TimeError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(TimeError::Empty);
        }
        let day = scanned_day(s).ok_or_else(|| TimeError::Unparseable(s.to_owned()))??;
        if !(FIRST_DAY..=LAST_DAY).contains(&day) {
            return Err(TimeError::OutsideDays(s.to_owned()));
        }
        Ok(day)
    }

    /// Reads a day a store wrote: any day the calendar holds, without the input range
    /// (a value kept from before the range existed must stay readable), in the forms
    /// [`TenantZone::parse_day`] reads and jiff's own (`-009999-01-02`).
    pub fn read_day(text: &str) -> Result<Date, TimeError> {
        let s = text.trim();
        scanned_day(s).unwrap_or_else(|| {
            s.parse::<Date>()
                .map_err(|_| TimeError::Unparseable(s.to_owned()))
        })
    }
}

/// `s` read as a plain day (`YYYY-MM-DD`, `YYYY/M/D`): none if it has another form, an
/// error if it names no real date.
fn scanned_day(s: &str) -> Option<Result<Date, TimeError>> {
    let p = scan(s.as_bytes()).filter(|p| !p.has_time)?;
    Some(Date::new(p.year, p.month, p.day).map_err(|_| TimeError::OutOfRange(s.to_owned())))
}

/// Days from 1970-01-01 to a valid date (the inverse of [`civil_from_days`]).
fn days_from_civil(year: i16, month: i8, day: i8) -> i64 {
    i64::from(day_number(
        i32::from(year),
        u32::from(month.unsigned_abs()),
        u32::from(day.unsigned_abs()),
    ))
}

/// The date `days` after 1970-01-01 (proleptic Gregorian; Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> Option<Date> {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()
}

struct Scanned {
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    nanos: i32,
    offset_seconds: Option<i32>,
    has_time: bool,
}

/// A byte cursor for the hand-written timestamp grammar: imports parse millions of these.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Between `min` and `max` ASCII digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<i32> {
        let start = self.i;
        let mut v: i32 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(d @ b'0'..=b'9') => {
                    v = v * 10 + i32::from(d - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(v)
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn eat_str(&mut self, s: &str) -> bool {
        if self.b[self.i..].starts_with(s.as_bytes()) {
            self.i += s.len();
            true
        } else {
            false
        }
    }
}

/// Seconds (10 digits) or milliseconds (13 digits) since the epoch, as systems write them
/// (Weimob's `createTime`, WeCom's `createtime`); `None` for any other text.
fn epoch(s: &str) -> Option<Result<Timestamp, TimeError>> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = s.parse().ok()?;
    let ts = match s.len() {
        10 => Timestamp::from_second(n),
        13 => Timestamp::from_millisecond(n),
        _ => return None,
    };
    Some(
        ts.ok()
            .filter(|t| (EARLIEST..END_OF_TIMES).contains(t))
            .ok_or_else(|| TimeError::OutsideTimes(s.to_owned())),
    )
}

fn scan(b: &[u8]) -> Option<Scanned> {
    let mut c = Cursor { b, i: 0 };
    let year = c.digits(4, 4)?;
    // `2026-05-01`, `2026-5-1`, `2026/5/1`, `2026.5.1`, or `2026年5月1日`.
    let (month, day) = if c.eat_str("年") {
        let month = c.digits(1, 2)?;
        if !c.eat_str("月") {
            return None;
        }
        let day = c.digits(1, 2)?;
        if !(c.eat_str("日") || c.eat_str("号")) {
            return None;
        }
        (month, day)
    } else {
        let sep = c.peek()?;
        if !matches!(sep, b'-' | b'/' | b'.') {
            return None;
        }
        c.i += 1;
        let month = c.digits(1, 2)?;
        if !c.eat(sep) {
            return None;
        }
        (month, c.digits(1, 2)?)
    };
    let mut out = Scanned {
        year: i16::try_from(year).ok()?,
        month: i8::try_from(month).ok()?,
        day: i8::try_from(day).ok()?,
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        offset_seconds: None,
        has_time: false,
    };
    if c.done() {
        return Some(out);
    }
    if !(c.eat(b'T') || c.eat(b't')) {
        if !c.eat(b' ') {
            return None;
        }
        while c.eat(b' ') {}
    }
    out.has_time = true;
    out.hour = i8::try_from(c.digits(1, 2)?).ok()?;
    if !c.eat(b':') {
        return None;
    }
    out.minute = i8::try_from(c.digits(2, 2)?).ok()?;
    if c.eat(b':') {
        out.second = i8::try_from(c.digits(2, 2)?).ok()?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            let frac = c.digits(1, 9)?;
            let len = c.i - start;
            out.nanos = frac * 10i32.pow(u32::try_from(9 - len).ok()?);
        }
    }
    if c.done() {
        return Some(out);
    }
    while c.eat(b' ') {}
    if c.eat(b'Z') || c.eat(b'z') {
        out.offset_seconds = Some(0);
    } else {
        let sign = match c.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        c.i += 1;
        let hours = c.digits(2, 2)?;
        let minutes = if c.eat(b':') {
            c.digits(2, 2)?
        } else {
            c.digits(0, 2).unwrap_or(0)
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        out.offset_seconds = Some(sign * (hours * 3600 + minutes * 60));
    }
    c.done().then_some(out)
}

// ---------------------------------------------------------------------------------------
// Days as numbers, for the figures over millions of rows

/// A civil day as a number: days since 1970-01-01 (proleptic Gregorian; negative before).
pub type DayNumber = i32;

/// The day number of a civil date. `month` is 1–12 and `day` 1–31; not checked.
#[inline(always)]
pub const fn day_number(year: i32, month: u32, day: u32) -> DayNumber {
    // Days from civil (H. Hinnant): years start in March so the leap day comes last.
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp as i32 + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day number of a date.
pub fn date_number(date: Date) -> DayNumber {
    day_number(
        i32::from(date.year()),
        date.month().unsigned_abs().into(),
        date.day().unsigned_abs().into(),
    )
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
#[inline(always)]
pub const fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in a month of a year; `month` is 1–12.
#[inline(always)]
pub const fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The first and last years whose days [`ZoneDays`] keeps in its table.
const TABLE_YEARS: (i32, i32) = (1900, 2200);
const SECONDS_PER_DAY: i64 = 86_400;
/// Marks a day near a change of the zone's offset: asked about it, `ZoneDays` asks jiff.
const SHIFTING: i32 = i32::MIN;

/// The local day of instants and local times in a tenant's zone, fast: a table of the
/// zone's offset for every day of 1900–2199 that is at least three days from any change of
/// offset (for Asia/Shanghai, every day since 1991). Anything else goes to jiff, so the
/// answer is always exactly `TenantZone::day_of`.
#[derive(Clone)]
pub struct ZoneDays {
    zone: TenantZone,
    first: DayNumber,
    /// Offset in seconds of each day from `first` on, or `SHIFTING`.
    offsets: Vec<i32>,
}

impl fmt::Debug for ZoneDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZoneDays").field(&self.zone).finish()
    }
}

impl ZoneDays {
    pub fn new(zone: &TenantZone) -> ZoneDays {
        let first = day_number(TABLE_YEARS.0, 1, 1);
        let end = day_number(TABLE_YEARS.1, 1, 1);
        let mut offsets = Vec::new();
        // A zone jiff cannot find again by name keeps an empty table: every question goes
        // to `TenantZone` itself.
        if let Ok(tz) = TimeZone::get(zone.name()) {
            offsets = (first..end)
                .map(
                    |d| match Timestamp::from_second(i64::from(d) * SECONDS_PER_DAY) {
                        Ok(t) => tz.to_offset(t).seconds(),
                        Err(_) => SHIFTING,
                    },
                )
                .collect();
            let from = Timestamp::from_second(i64::from(first - 4) * SECONDS_PER_DAY);
            let until = i64::from(end + 4) * SECONDS_PER_DAY;
            if let Ok(from) = from {
                for change in tz.following(from) {
                    let at = change.timestamp().as_second();
                    if at > until {
                        break;
                    }
                    let lo = (at - 3 * SECONDS_PER_DAY).div_euclid(SECONDS_PER_DAY);
                    let hi = (at + 3 * SECONDS_PER_DAY).div_euclid(SECONDS_PER_DAY);
                    for d in lo..=hi {
                        if let Some(slot) = usize::try_from(d - i64::from(first))
                            .ok()
                            .and_then(|i| offsets.get_mut(i))
                        {
                            *slot = SHIFTING;
                        }
                    }
                }
            }
        }
        ZoneDays {
            zone: zone.clone(),
            first,
            offsets,
        }
    }

    /// The zone's offset on the UTC day `day`, when it is the same for three days around it.
    #[inline]
    fn steady_offset(&self, day: i64) -> Option<i32> {
        let i = usize::try_from(day - i64::from(self.first)).ok()?;
        self.offsets.get(i).copied().filter(|&o| o != SHIFTING)
    }

    /// The local day of an instant given as seconds since the epoch (floored), when the
    /// table knows it.
    #[inline]
    pub fn day_of_second(&self, second: i64) -> Option<DayNumber> {
        let offset = self.steady_offset(second.div_euclid(SECONDS_PER_DAY))?;
        DayNumber::try_from((second + i64::from(offset)).div_euclid(SECONDS_PER_DAY)).ok()
    }

    /// Whether a local time on day `day` is read (as `TenantZone::parse_timestamp` reads
    /// times without an offset) as an instant on that same local day: true unless the
    /// zone's offset changes near it.
    #[inline]
    pub fn local_day_is_steady(&self, day: DayNumber) -> bool {
        self.steady_offset(i64::from(day)).is_some()
    }

    /// The local day of an instant: `TenantZone::day_of`, as a number.
    pub fn day_of(&self, ts: Timestamp) -> DayNumber {
        let floor = ts.as_second() - i64::from(ts.subsec_nanosecond() < 0);
        match self.day_of_second(floor) {
            Some(day) => day,
            None => date_number(self.zone.day_of(ts)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_date_forms_of_chinese_exports_are_read() {
        let zone = TenantZone::default();
        let at = |s: &str| zone.parse_timestamp(s).expect(s);
        let expected = at("2026-05-01 09:30:00");
        for form in [
            "2026年5月1日 9:30",
            "2026年05月01日 09:30:00",
            "2026-5-1 9:30",
            "2026/5/1 9:30",
            "2026.05.01 09:30",
        ] {
            assert_eq!(at(form), expected, "{form}");
        }
        assert_eq!(at("2026年5月1日"), at("2026-05-01"));
        assert_eq!(
            TenantZone::parse_day("2026年5月1日").expect("day"),
            TenantZone::parse_day("2026-05-01").expect("day")
        );
        // Seconds and milliseconds since the epoch (UTC whatever the zone).
        assert_eq!(
            at("1777599000"),
            Timestamp::from_second(1_777_599_000).expect("t")
        );
        assert_eq!(
            at("1777599000123"),
            Timestamp::from_millisecond(1_777_599_000_123).expect("t")
        );
        assert!(zone.parse_timestamp("20260501").is_err());
        assert!(zone.parse_timestamp("9999999999999").is_err());
        assert!(zone.parse_timestamp("2026年13月1日").is_err());
        assert!(zone.parse_timestamp("2026年5月").is_err());
    }

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn naive_times_by_arithmetic_agree_with_the_zone_database(
            secs in 86_400i64..4_133_980_800 - 86_400,
            zone in prop::sample::select(vec!["Asia/Shanghai", "UTC", "Asia/Tokyo", "America/New_York"]),
        ) {
            let tz = TenantZone::named(zone).expect("zone");
            let dt = jiff::tz::TimeZone::UTC.to_datetime(Timestamp::from_second(secs).expect("ts"));
            let text = dt.strftime("%Y-%m-%d %H:%M:%S").to_string();
            let expected = tz.tz.to_ambiguous_timestamp(dt).compatible().expect("in range");
            prop_assert_eq!(tz.parse_timestamp(&text).expect("parses"), expected);
            prop_assert_eq!(days_from_civil(dt.year(), dt.month(), dt.day()), secs.div_euclid(86_400));
        }
    }

    fn utc(s: &str) -> String {
        TenantZone::default()
            .parse_timestamp(s)
            .expect(s)
            .to_string()
    }

    #[test]
    fn naive_times_are_read_in_the_tenant_zone_and_stored_as_utc() {
        assert_eq!(utc("2024-05-01 09:30:00"), "2024-05-01T01:30:00Z");
        assert_eq!(utc("2024-05-01"), "2024-04-30T16:00:00Z");
        assert_eq!(utc("2024-05-01T09:30:00"), "2024-05-01T01:30:00Z");
        assert_eq!(utc("2024-05-01 9:30"), "2024-05-01T01:30:00Z");
    }

    #[test]
    fn taobao_slashed_times_are_read() {
        assert_eq!(utc("2024/5/1 9:05"), "2024-05-01T01:05:00Z");
        assert_eq!(utc("2024/12/31 23:59:59"), "2024-12-31T15:59:59Z");
        assert_eq!(utc("2024/5/1"), "2024-04-30T16:00:00Z");
    }

    #[test]
    fn rfc3339_offsets_are_honoured() {
        assert_eq!(utc("2024-05-01T09:30:00+08:00"), "2024-05-01T01:30:00Z");
        assert_eq!(utc("2024-05-01T09:30:00Z"), "2024-05-01T09:30:00Z");
        assert_eq!(
            utc("2024-05-01T09:30:00.250-05:00"),
            "2024-05-01T14:30:00.25Z"
        );
        assert_eq!(utc("2024-05-01 09:30:00+0800"), "2024-05-01T01:30:00Z");
    }

    #[test]
    fn bad_times_are_rejected_with_a_reason() {
        let z = TenantZone::default();
        assert_eq!(z.parse_timestamp(""), Err(TimeError::Empty));
        assert!(matches!(
            z.parse_timestamp("yesterday"),
            Err(TimeError::Unparseable(_))
        ));
        assert!(matches!(
            z.parse_timestamp("2024-02-30"),
            Err(TimeError::OutOfRange(_))
        ));
        assert!(matches!(
            z.parse_timestamp("2024-05-01 25:00:00"),
            Err(TimeError::OutOfRange(_))
        ));
        assert!(matches!(
            z.parse_timestamp("2024-5"),
            Err(TimeError::Unparseable(_))
        ));
        assert!(matches!(
            z.parse_timestamp("2024-05-01 09:30:00 GMT"),
            Err(TimeError::Unparseable(_))
        ));
        assert!(matches!(
            z.parse_timestamp("01/05/2024"),
            Err(TimeError::Unparseable(_))
        ));
    }

    #[test]
    fn times_outside_1970_to_2100_are_refused_at_the_edges() {
        let z = TenantZone::default();
        for text in [
            "9999-12-31 23:00:00",
            "9999-12-31T23:00:00Z",
            "2101-01-01T00:00:00Z",
            "2101-01-01 08:00:00",
            "1969-12-31T23:59:59Z",
            "1970-01-01 07:59:59",
            "0001-01-01",
        ] {
            assert_eq!(
                z.parse_timestamp(text),
                Err(TimeError::OutsideTimes(text.to_owned())),
                "{text}"
            );
        }
        assert_eq!(utc("1970-01-01 08:00:00"), "1970-01-01T00:00:00Z");
        assert_eq!(utc("2100-12-31T23:59:59Z"), "2100-12-31T23:59:59Z");
        assert_eq!(utc("2101-01-01 07:59:59"), "2100-12-31T23:59:59Z");
        let e = z
            .parse_timestamp("9999-12-31 23:00:00")
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            "'9999-12-31 23:00:00' is outside the times accepted, 1970-01-01 00:00:00 to 2100-12-31 23:59:59 UTC"
        );
    }

    #[test]
    fn days_outside_1900_to_2100_are_refused_but_stored_days_always_read() {
        assert!(matches!(
            TenantZone::parse_day("9999-12-31"),
            Err(TimeError::OutsideDays(_))
        ));
        assert!(matches!(
            TenantZone::parse_day("1899-12-31"),
            Err(TimeError::OutsideDays(_))
        ));
        assert_eq!(
            TenantZone::parse_day("1900-01-01").expect("first"),
            FIRST_DAY
        );
        assert_eq!(TenantZone::parse_day("2100-12-31").expect("last"), LAST_DAY);
        for day in [Date::MIN, Date::MAX, Date::constant(-9999, 1, 2), FIRST_DAY] {
            assert_eq!(TenantZone::read_day(&day.to_string()), Ok(day), "{day}");
        }
    }

    #[test]
    fn an_order_at_half_past_eleven_local_is_on_that_local_day() {
        let z = TenantZone::default();
        let ts = z.parse_timestamp("2024-03-01 23:30:00").expect("valid");
        assert_eq!(ts.to_string(), "2024-03-01T15:30:00Z");
        assert_eq!(z.day_of(ts).to_string(), "2024-03-01");
        let early = z
            .parse_timestamp("2024-03-02T00:10:00+08:00")
            .expect("valid");
        assert_eq!(z.day_of(early).to_string(), "2024-03-02");
    }

    #[test]
    fn days_by_arithmetic_agree_with_the_zone_database() {
        for name in ["Asia/Shanghai", "UTC", "Asia/Kolkata", "America/New_York"] {
            let zone = TenantZone::named(name).expect("zone");
            let mut ts = Timestamp::from_second(-2_000_000_000).expect("ts");
            let step = jiff::SignedDuration::from_secs(3_601 * 7 + 13);
            while ts < Timestamp::from_second(4_000_000_000).expect("ts") {
                assert_eq!(
                    zone.day_of(ts),
                    zone.tz.to_datetime(ts).date(),
                    "{name} {ts}"
                );
                ts = ts.checked_add(step).expect("ts");
            }
        }
    }

    #[test]
    fn zone_days_agree_with_the_zone_around_changes_of_offset() {
        for name in ["Asia/Shanghai", "America/New_York", "UTC", "Pacific/Apia"] {
            let zone = TenantZone::named(name).expect(name);
            let days = ZoneDays::new(&zone);
            let mut second = Timestamp::from_second(-2_300_000_000)
                .expect("ts")
                .as_second();
            while second < 7_300_000_000 {
                let ts = Timestamp::from_second(second).expect("ts");
                assert_eq!(days.day_of(ts), date_number(zone.day_of(ts)), "{name} {ts}");
                second += 3_599 * 7;
            }
        }
    }

    #[test]
    fn day_numbers_count_from_the_epoch() {
        assert_eq!(day_number(1970, 1, 1), 0);
        assert_eq!(day_number(1969, 12, 31), -1);
        assert_eq!(day_number(2000, 3, 1), 11_017);
        assert_eq!(
            date_number(TenantZone::parse_day("2024-02-29").expect("day")),
            day_number(2024, 2, 29)
        );
        for d in ["1900-03-01", "2024-12-31", "1601-01-01", "2199-12-31"] {
            let date = TenantZone::read_day(d).expect(d);
            let back = jiff::civil::date(1970, 1, 1)
                .checked_add(jiff::Span::new().days(i64::from(date_number(date))))
                .expect("in range");
            assert_eq!(back, date);
        }
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(TenantZone::named("Mars/Olympus").is_err());
        assert!(TenantZone::named("America/New_York").is_ok());
    }
}
