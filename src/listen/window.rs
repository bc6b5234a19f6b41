//! Entry-limit windows: a length of time written in the units the platform's time frames use,
//! from minutes to years.

use std::fmt;
use std::hash::{Hash, Hasher};

use jiff::{SignedDuration, Span};
use serde::{Deserialize, Serialize};

use crate::listen::error::ListenError;

/// A unit an [`EntryWindow`] is written in, and the fixed length it counts as.
///
/// | unit | counts as | seconds |
/// | --- | --- | --- |
/// | second | 1 second | 1 |
/// | minute | 60 seconds | 60 |
/// | hour | 60 minutes | 3 600 |
/// | day | 24 hours | 86 400 |
/// | week | 7 days | 604 800 |
/// | month | 30 days | 2 592 000 |
/// | year | 365 days | 31 536 000 |
///
/// A window is a sliding length of time, not a calendar period: "1 month" is the 30 days before
/// the entry, whatever the month, and "1 year" the 365 days before it (so "12 months" is
/// 360 days, 5 days shorter than "1 year").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum WindowUnit {
    /// 1 second.
    Second,
    /// 60 seconds.
    Minute,
    /// 60 minutes.
    Hour,
    /// 24 hours.
    Day,
    /// 7 days.
    Week,
    /// 30 days.
    Month,
    /// 365 days.
    Year,
}

impl WindowUnit {
    /// Every unit, from the shortest.
    pub const ALL: [WindowUnit; 7] = [
        Self::Second,
        Self::Minute,
        Self::Hour,
        Self::Day,
        Self::Week,
        Self::Month,
        Self::Year,
    ];

    /// How many seconds one of this unit counts as (see the table on [`WindowUnit`]).
    pub const fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
            Self::Week => 7 * 86_400,
            Self::Month => 30 * 86_400,
            Self::Year => 365 * 86_400,
        }
    }

    /// The unit's name for one: `second`, `minute`, `hour`, `day`, `week`, `month`, `year`.
    pub const fn singular(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The unit's name for any other count: `seconds`, ..., `years`.
    pub const fn plural(self) -> &'static str {
        match self {
            Self::Second => "seconds",
            Self::Minute => "minutes",
            Self::Hour => "hours",
            Self::Day => "days",
            Self::Week => "weeks",
            Self::Month => "months",
            Self::Year => "years",
        }
    }
}

/// The sliding window an [`EntryLimit`](crate::EntryLimit) counts entries in: a positive
/// whole number of seconds, remembered with the unit it is best written in.
///
/// Read from text ([`FromStr`](std::str::FromStr), and the flow file's `within`), in any of
/// these forms (units may be mixed, as in `"1 day 12 hours"` or `"P1DT12H"`):
///
/// - ISO 8601 durations: `"P7D"`, `"P1W"`, `"P1M"`, `"P1Y"`, `"PT36H"`, `"P1DT12H"`, `"PT90M"`;
/// - friendly forms: `"7 days"`, `"7d"`, `"1 week"`, `"2w"`, `"1 month"`, `"3mo"`, `"1 year"`,
///   `"1y"`, `"36 hours"`, `"36h"`, `"90 minutes"`, `"90m"`, `"1 day, 12 hours"`.
///
/// Each unit counts as the fixed length in [`WindowUnit`]'s table: a day is 24 hours, a week
/// 7 days, a month 30 days and a year 365 days. (`m` is minutes: write `mo` or `month` for
/// months.) A window that is zero or negative, holds a fraction of a second, or is longer than
/// [`EntryWindow::MAX`] (100 years) is refused.
///
/// It is written back ([`Display`](fmt::Display), and JSON) as one count of the largest unit
/// that is not larger than the largest unit it was written with and divides it exactly:
/// `"P7D"` is `7 days`, `"1 week"` is `1 week`, `"P1DT12H"` is `36 hours`, `"PT720H"` is
/// `720 hours`. Reading that text back gives the same window.
///
/// Two windows of the same length are equal, however they were written (`"7 days"` and
/// `"1 week"`).
///
/// ```
/// use optout_relay::listen::EntryWindow;
/// use optout_relay::listen::WindowUnit;
///
/// let week: EntryWindow = "P1W".parse()?;
/// assert_eq!(week, "7 days".parse()?);
/// assert_eq!(week.to_string(), "1 week");
/// assert_eq!(week.duration().as_secs(), 604_800);
///
/// let month: EntryWindow = "1 month".parse()?;
/// assert_eq!(month, EntryWindow::new(30, WindowUnit::Day)?);
/// assert_eq!(month.to_string(), "1 month");
/// assert_eq!("1 day 12 hours".parse::<EntryWindow>()?.to_string(), "36 hours");
/// # Ok::<(), optout_relay::listen::ListenError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EntryWindow {
    seconds: i64,
    unit: WindowUnit,
}

impl EntryWindow {
    /// The longest window: 100 years (of 365 days). A limit counted over a longer time is a
    /// limit counted over all time: leave the window out.
    pub const MAX: EntryWindow = EntryWindow {
        seconds: 100 * 365 * 86_400,
        unit: WindowUnit::Year,
    };

    /// A window of `count` of `unit`, such as 7 days or 1 month.
    ///
    /// # Errors
    ///
    /// [`ListenError::NonPositiveWindow`] for a count of 0, [`ListenError::WindowTooLong`] for
    /// a window longer than [`EntryWindow::MAX`].
    pub fn new(count: u32, unit: WindowUnit) -> Result<Self, ListenError> {
        if count == 0 {
            return Err(ListenError::NonPositiveWindow);
        }
        // At most u32::MAX years: about 1.4e17 seconds, well within i64.
        Self::checked(i64::from(count) * unit.seconds(), unit)
    }

    /// The window, unless it is longer than [`EntryWindow::MAX`].
    fn checked(seconds: i64, unit: WindowUnit) -> Result<Self, ListenError> {
        if seconds > Self::MAX.seconds {
            return Err(ListenError::WindowTooLong);
        }
        Ok(Self { seconds, unit })
    }

    /// A window of this length, written in the largest unit up to weeks that divides it
    /// exactly (months and years are conventions, so a length is never shown in them unless
    /// written so).
    ///
    /// # Errors
    ///
    /// [`ListenError::NonPositiveWindow`] for a length that is zero or negative,
    /// [`ListenError::WindowFraction`] for one that is not a whole number of seconds,
    /// [`ListenError::WindowTooLong`] for one longer than [`EntryWindow::MAX`].
    pub fn from_duration(duration: SignedDuration) -> Result<Self, ListenError> {
        if duration <= SignedDuration::ZERO {
            return Err(ListenError::NonPositiveWindow);
        }
        if duration.subsec_nanos() != 0 {
            return Err(ListenError::WindowFraction);
        }
        Self::written_in(duration.as_secs(), WindowUnit::Week)
    }

    /// `seconds` (positive), written in the largest unit up to `largest` that divides it.
    fn written_in(seconds: i64, largest: WindowUnit) -> Result<Self, ListenError> {
        let unit = WindowUnit::ALL
            .into_iter()
            .rev()
            .filter(|unit| *unit <= largest)
            .find(|unit| seconds % unit.seconds() == 0)
            .unwrap_or(WindowUnit::Second);
        Self::checked(seconds, unit)
    }

    /// The window's length.
    pub fn duration(&self) -> SignedDuration {
        SignedDuration::from_secs(self.seconds)
    }

    /// The unit the window is written in.
    pub fn unit(&self) -> WindowUnit {
        self.unit
    }

    /// How many of [`unit`](Self::unit) the window is.
    pub fn count(&self) -> i64 {
        self.seconds / self.unit.seconds()
    }
}

impl PartialEq for EntryWindow {
    fn eq(&self, other: &Self) -> bool {
        self.seconds == other.seconds
    }
}

impl Eq for EntryWindow {}

impl Hash for EntryWindow {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.seconds.hash(state);
    }
}

impl PartialOrd for EntryWindow {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntryWindow {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.seconds.cmp(&other.seconds)
    }
}

impl fmt::Display for EntryWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.count();
        let name = if count == 1 {
            self.unit.singular()
        } else {
            self.unit.plural()
        };
        write!(f, "{count} {name}")
    }
}

impl std::str::FromStr for EntryWindow {
    type Err = ListenError;

    /// Reads the forms listed on [`EntryWindow`].
    ///
    /// # Errors
    ///
    /// [`ListenError::UnreadableWindow`] for text in neither form (the text is not repeated),
    /// [`ListenError::NonPositiveWindow`] for a window that is zero or negative,
    /// [`ListenError::WindowFraction`] for one with a fraction of a second,
    /// [`ListenError::WindowTooLong`] for one longer than [`EntryWindow::MAX`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let span: Span = text.parse().map_err(|_| ListenError::UnreadableWindow)?;
        if span.is_negative() || span.is_zero() {
            return Err(ListenError::NonPositiveWindow);
        }
        if span.get_milliseconds() != 0
            || span.get_microseconds() != 0
            || span.get_nanoseconds() != 0
        {
            return Err(ListenError::WindowFraction);
        }
        // jiff bounds every unit of a span (at most 19 998 years, and as long in any other
        // unit), so this sum is far from overflowing.
        let parts = [
            (i64::from(span.get_years()), WindowUnit::Year),
            (i64::from(span.get_months()), WindowUnit::Month),
            (i64::from(span.get_weeks()), WindowUnit::Week),
            (i64::from(span.get_days()), WindowUnit::Day),
            (i64::from(span.get_hours()), WindowUnit::Hour),
            (span.get_minutes(), WindowUnit::Minute),
            (span.get_seconds(), WindowUnit::Second),
        ];
        let seconds = parts
            .iter()
            .map(|(count, unit)| count * unit.seconds())
            .sum();
        let largest = parts
            .iter()
            .find(|(count, _)| *count != 0)
            .map_or(WindowUnit::Second, |(_, unit)| *unit);
        Self::written_in(seconds, largest)
    }
}

impl Serialize for EntryWindow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntryWindow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WindowVisitor;

        impl serde::de::Visitor<'_> for WindowVisitor {
            type Value = EntryWindow;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a window such as \"7 days\", \"1 month\" or \"P1W\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<EntryWindow, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(WindowVisitor)
    }
}
