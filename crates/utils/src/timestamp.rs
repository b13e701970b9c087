//! Unix timestamps, and RFC 3339 text read as one.
//!
//! Nostr counts time in whole Unix seconds; command-line options and
//! configuration write dates in RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::error::{Error, Result};

/// The current time in Unix seconds (UTC).
#[must_use]
pub fn now_timestamp() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
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
            // From 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, what RFC
            // 3339's four-digit years can write.
            value in -62_167_219_200_i64..=253_402_300_799,
        ) {
            let text = OffsetDateTime::from_unix_timestamp(value)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            prop_assert_eq!(rfc3339_to_unix(&text).unwrap(), value);
        }

        #[test]
        fn rfc3339_to_unix_never_panics(input in ".*") {
            let _ = rfc3339_to_unix(&input);
        }
    }
}
