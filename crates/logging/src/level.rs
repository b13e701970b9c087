//! Levels of outputs: a level name or a list of filter directives, checked
//! before any output is built.

use tracing_subscriber::EnvFilter;

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Checks a level or directive list, explaining what is wrong with it.
///
/// A directive without `=` must be a level name: `EnvFilter` would read a
/// misspelt level like `inof` as "everything from the target `inof`", which
/// silently hides every line.
pub(crate) fn parse_level(spec: &str) -> Result<EnvFilter, String> {
    if spec.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    for directive in spec.split(',').map(str::trim) {
        if directive.is_empty() || directive.contains(['=', '[']) {
            continue;
        }
        if !LEVELS
            .iter()
            .any(|level| level.eq_ignore_ascii_case(directive))
        {
            return Err(format!(
                "`{directive}` is not a level; use trace, debug, info, warn, error or off, \
                 or `target=level` to set the level of one target"
            ));
        }
    }
    build_filter(spec).map_err(|error| format!("not valid filter directives: {error}"))
}

/// Parses directives without looking at `RUST_LOG`: the configuration decides.
/// Blanks around directives are allowed, as in `warn, bigbrotr::pool=debug`.
pub(crate) fn build_filter(
    spec: &str,
) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    let directives: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    EnvFilter::builder()
        .with_regex(false)
        .parse(directives.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directive_lists_are_accepted() {
        for spec in [
            "trace",
            "DEBUG",
            "info",
            "warn",
            "error",
            "off",
            "info,bigbrotr::pool=debug",
            "bigbrotr=trace",
            "warn, bigbrotr_pool=debug,",
        ] {
            assert!(parse_level(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn a_misspelt_level_is_explained() {
        assert_eq!(
            parse_level("inof").err(),
            Some(
                "`inof` is not a level; use trace, debug, info, warn, error or off, \
                 or `target=level` to set the level of one target"
                    .to_owned()
            )
        );
    }

    #[test]
    fn an_empty_level_is_rejected() {
        assert_eq!(
            parse_level("  ").err(),
            Some("must not be empty".to_owned())
        );
    }

    #[test]
    fn an_invalid_directive_is_rejected() {
        let message = parse_level("info,bigbrotr=loud").expect_err("invalid level");
        assert!(
            message.starts_with("not valid filter directives: "),
            "{message}"
        );
    }
}
