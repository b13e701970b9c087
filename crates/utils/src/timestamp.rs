//! Unix timestamps and their RFC 3339 text form.
//!
//! Nostr counts time in whole Unix seconds; logs, reports and configuration
//! use RFC 3339. These helpers convert between the two and always write UTC
//! with a `Z` suffix.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::error::{Error, Result};

/// `0000-01-01T00:00:00Z`, the earliest instant RFC 3339 can write.
pub const MIN_RFC3339_TIMESTAMP: i64 = -62_167_219_200;

/// `9999-12-31T23:59:59Z`, the latest whole second RFC 3339 can write.
pub const MAX_RFC3339_TIMESTAMP: i64 = 253_402_300_799;

/// The current time in Unix seconds (UTC).
#[must_use]
pub fn now_timestamp() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Writes a Unix timestamp as RFC 3339 in UTC, e.g. `2024-01-15T10:30:45Z`.
///
/// Fails with [`Error::InvalidTimestamp`] outside
/// [`MIN_RFC3339_TIMESTAMP`]`..=`[`MAX_RFC3339_TIMESTAMP`], since RFC 3339
/// years have exactly four digits.
///
/// ```
/// assert_eq!(bigbrotr_utils::unix_to_rfc3339(1_705_314_645)?, "2024-01-15T10:30:45Z");
/// # Ok::<(), bigbrotr_utils::Error>(())
/// ```
pub fn unix_to_rfc3339(value: i64) -> Result<String> {
    if !(MIN_RFC3339_TIMESTAMP..=MAX_RFC3339_TIMESTAMP).contains(&value) {
        return Err(Error::InvalidTimestamp { value });
    }
    OffsetDateTime::from_unix_timestamp(value)
        .map_err(|_| Error::InvalidTimestamp { value })?
        .format(&Rfc3339)
        .map_err(|source| Error::Format { value, source })
}

/// Reads an RFC 3339 date-time with any offset (`2024-01-15T10:30:45Z`,
/// `2024-01-15T12:30:45+02:00`, fractions of a second allowed and dropped) or
/// a plain `YYYY-MM-DD` date, taken as midnight UTC, and returns Unix seconds.
///
/// As RFC 3339 allows, `T` and `Z` may be lowercase and the `T` may be a
/// space. A date-time without an offset is refused: its instant would be a
/// guess.
/// Fractions are dropped by rounding towards the past, so the result is
/// the whole second the instant falls in.
///
/// ```
/// use bigbrotr_utils::rfc3339_to_unix;
///
/// assert_eq!(rfc3339_to_unix("2024-01-15T12:30:45+02:00")?, 1_705_314_645);
/// assert_eq!(rfc3339_to_unix("2024-01-15")?, 1_705_276_800);
/// # Ok::<(), bigbrotr_utils::Error>(())
/// ```
pub fn rfc3339_to_unix(input: &str) -> Result<i64> {
    let date_time_error = match OffsetDateTime::parse(input, &Rfc3339) {
        Ok(instant) => return Ok(instant.unix_timestamp()),
        Err(err) => err,
    };
    let date_error = match Date::parse(input, format_description!("[year]-[month]-[day]")) {
        Ok(date) => return Ok(date.midnight().assume_utc().unix_timestamp()),
        Err(err) => err,
    };
    // Report the parser matching what the input was meant to be, so
    // `2024-13-01` complains about the month rather than a missing time.
    let looks_like_a_date_time = input.contains(['T', 't', ' ']);
    Err(Error::InvalidDateTime {
        input: input.to_owned(),
        source: if looks_like_a_date_time {
            date_time_error
        } else {
            date_error
        },
    })
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn now_timestamp_is_after_2024_and_close_to_the_system_clock() {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = now_timestamp();
        assert!(now > 1_704_067_200);
        assert!(now.abs_diff(i64::try_from(system).unwrap()) <= 1);
    }

    #[test]
    fn unix_to_rfc3339_writes_utc_with_z() {
        assert_eq!(unix_to_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            unix_to_rfc3339(1_705_314_645).unwrap(),
            "2024-01-15T10:30:45Z"
        );
        assert_eq!(unix_to_rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn unix_to_rfc3339_accepts_both_ends_of_the_range() {
        assert_eq!(
            unix_to_rfc3339(MIN_RFC3339_TIMESTAMP).unwrap(),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            unix_to_rfc3339(MAX_RFC3339_TIMESTAMP).unwrap(),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn unix_to_rfc3339_refuses_timestamps_outside_four_digit_years() {
        for value in [
            MIN_RFC3339_TIMESTAMP - 1,
            MAX_RFC3339_TIMESTAMP + 1,
            i64::MIN,
            i64::MAX,
        ] {
            match unix_to_rfc3339(value) {
                Err(Error::InvalidTimestamp { value: v }) => assert_eq!(v, value),
                other => panic!("expected InvalidTimestamp for {value}, got {other:?}"),
            }
        }
    }

    #[test]
    fn rfc3339_to_unix_reads_utc_and_offsets() {
        assert_eq!(
            rfc3339_to_unix("2024-01-15T10:30:45Z").unwrap(),
            1_705_314_645
        );
        assert_eq!(
            rfc3339_to_unix("2024-01-15T12:30:45+02:00").unwrap(),
            1_705_314_645
        );
        assert_eq!(
            rfc3339_to_unix("2024-01-15T05:30:45-05:00").unwrap(),
            1_705_314_645
        );
        assert_eq!(
            rfc3339_to_unix("2024-01-15t10:30:45z").unwrap(),
            1_705_314_645
        );
        assert_eq!(
            rfc3339_to_unix("2024-01-15 10:30:45Z").unwrap(),
            1_705_314_645
        );
    }

    #[test]
    fn rfc3339_to_unix_drops_fractions_towards_the_past() {
        assert_eq!(
            rfc3339_to_unix("2024-01-15T10:30:45.999Z").unwrap(),
            1_705_314_645
        );
        assert_eq!(rfc3339_to_unix("1969-12-31T23:59:59.5Z").unwrap(), -1);
    }

    #[test]
    fn rfc3339_to_unix_reads_a_plain_date_as_midnight_utc() {
        assert_eq!(rfc3339_to_unix("2024-01-15").unwrap(), 1_705_276_800);
        assert_eq!(rfc3339_to_unix("1970-01-01").unwrap(), 0);
    }

    #[test]
    fn rfc3339_to_unix_refuses_bad_input_and_names_it() {
        for input in [
            "",
            "yesterday",
            "2024-01-15T10:30:45",
            "2024-13-01",
            "2024-02-30",
            "2024-01-15T25:00:00Z",
            " 2024-01-15",
        ] {
            match rfc3339_to_unix(input) {
                Err(Error::InvalidDateTime { input: got, .. }) => assert_eq!(got, input),
                other => panic!("expected InvalidDateTime for {input:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn rfc3339_to_unix_reports_the_date_parser_for_date_shaped_input() {
        let err = rfc3339_to_unix("2024-13-01").unwrap_err();
        let date_err = Date::parse("2024-13-01", format_description!("[year]-[month]-[day]"))
            .unwrap_err()
            .to_string();
        assert_eq!(err.source().map(ToString::to_string), Some(date_err));
        assert_eq!(
            err.to_string(),
            "`2024-13-01` is neither an RFC 3339 date-time nor a YYYY-MM-DD date"
        );
    }

    #[test]
    fn rfc3339_to_unix_reports_the_date_time_parser_for_date_time_shaped_input() {
        let err = rfc3339_to_unix("2024-01-15T10:30:45").unwrap_err();
        let date_time_err = OffsetDateTime::parse("2024-01-15T10:30:45", &Rfc3339)
            .unwrap_err()
            .to_string();
        assert_eq!(err.source().map(ToString::to_string), Some(date_time_err));
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips_every_representable_second(
            value in MIN_RFC3339_TIMESTAMP..=MAX_RFC3339_TIMESTAMP,
        ) {
            let text = unix_to_rfc3339(value).unwrap();
            prop_assert_eq!(rfc3339_to_unix(&text).unwrap(), value);
        }

        #[test]
        fn rfc3339_to_unix_never_panics(input in ".*") {
            let _ = rfc3339_to_unix(&input);
        }
    }
}
