//! `${VAR}` and `${VAR:default}` expansion of configuration text.
//!
//! Expansion works on the text of a file, before it is parsed, so a value is
//! inserted exactly as it is: a value containing YAML syntax is read as
//! YAML. `port: ${DB_PORT}` with `DB_PORT=5432` is the number 5432, and
//! `password: ${DB_PASSWORD}` with a password containing `#` or `: ` would be
//! cut short or misread. Quote references whose values may contain such
//! characters: `password: "${DB_PASSWORD}"` (values containing `"` or `\`
//! still need care).
//!
//! The whole text is expanded, comments included: a `${NAME}` without
//! default in a comment still needs `NAME`.

use std::path::Path;

use crate::env::Env;
use crate::error::{Error, Result};

/// Replaces every variable reference in `text` with its value from `env`.
///
/// - `${NAME}` is the value of `NAME`; when `NAME` is not set this is
///   [`Error::MissingVariable`].
/// - `${NAME:default}` is the value of `NAME`, or `default` when `NAME` is
///   not set. A variable set to the empty string is set. The default may be
///   empty and may contain `:`, but not `}`.
/// - `$${` is a literal `${`.
/// - A `$` not followed by `{` is left as it is.
///
/// A name is made of ASCII letters, digits and `_` and does not start with
/// a digit; anything else is [`Error::InvalidVariableName`]. A `${` without
/// a `}` on the same line is [`Error::UnterminatedVariable`]. Errors name
/// `file` and the line of the reference; nothing else is done with `file`.
pub fn expand(text: &str, env: &Env, file: &Path) -> Result<String> {
    expand_with(text, env, file, |default| default.to_owned())
}

/// Like [`expand`], with each default that is used replaced by
/// `on_default(default)`: to find out which values came from defaults.
pub(crate) fn expand_with(
    text: &str,
    env: &Env,
    file: &Path,
    on_default: impl Fn(&str) -> String,
) -> Result<String> {
    let mut expanded = String::with_capacity(text.len());
    for piece in pieces(text, file) {
        match piece? {
            Piece::Text(text) => expanded.push_str(text),
            Piece::Reference(VariableReference {
                name,
                default,
                line,
            }) => match (env.get(name), default) {
                (Some(value), _) => expanded.push_str(value),
                (None, Some(default)) => expanded.push_str(&on_default(default)),
                (None, None) => {
                    return Err(Error::MissingVariable {
                        name: name.to_owned(),
                        file: file.to_path_buf(),
                        line,
                    })
                }
            },
        }
    }
    Ok(expanded)
}

/// A `${NAME}` or `${NAME:default}` of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariableReference<'t> {
    /// The variable.
    pub name: &'t str,
    /// What `${NAME:default}` gives when `NAME` is not set; `None` for
    /// `${NAME}`, which then fails.
    pub default: Option<&'t str>,
    /// The line of the reference, from 1.
    pub line: usize,
}

/// Every variable reference of `text`, in order, read by the rules of
/// [`expand`] (`$${` is not a reference) and failing where it fails but
/// for missing variables; `file` only names the text in errors.
///
/// ```
/// # use std::path::Path;
/// use bigbrotr_config::references;
///
/// let found = references("host: ${HOST:localhost} # $${NOT}", Path::new("x.yaml")).unwrap();
/// assert_eq!(found.len(), 1);
/// assert_eq!((found[0].name, found[0].default), ("HOST", Some("localhost")));
/// ```
pub fn references<'t>(text: &'t str, file: &Path) -> Result<Vec<VariableReference<'t>>> {
    pieces(text, file)
        .filter_map(|piece| match piece {
            Ok(Piece::Text(_)) => None,
            Ok(Piece::Reference(reference)) => Some(Ok(reference)),
            Err(error) => Some(Err(error)),
        })
        .collect()
}

/// A part of a text read for expansion.
enum Piece<'t> {
    /// Text kept as it is (`$${` gives `${`).
    Text(&'t str),
    /// A variable reference.
    Reference(VariableReference<'t>),
}

/// The pieces of `text`, in order; the first error ends them.
fn pieces<'t>(text: &'t str, file: &Path) -> impl Iterator<Item = Result<Piece<'t>>> + 't {
    let file = file.to_path_buf();
    let mut rest = Some(text);
    let mut line = 1;
    std::iter::from_fn(move || {
        let current = rest.take()?;
        if current.is_empty() {
            return None;
        }
        let Some(dollar) = current.find('$') else {
            return Some(Ok(Piece::Text(current)));
        };
        if dollar > 0 {
            let (before, from_dollar) = current.split_at(dollar);
            line += before.matches('\n').count();
            rest = Some(from_dollar);
            return Some(Ok(Piece::Text(before)));
        }
        if let Some(after) = current.strip_prefix("$${") {
            rest = Some(after);
            return Some(Ok(Piece::Text("${")));
        }
        let Some(body_and_rest) = current.strip_prefix("${") else {
            rest = Some(&current[1..]);
            return Some(Ok(Piece::Text("$")));
        };
        let end = match body_and_rest.find(['}', '\n']) {
            Some(end) if body_and_rest[end..].starts_with('}') => end,
            _ => {
                return Some(Err(Error::UnterminatedVariable {
                    file: file.clone(),
                    line,
                }))
            }
        };
        let body = &body_and_rest[..end];
        let (name, default) = match body.split_once(':') {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if !is_variable_name(name) {
            return Some(Err(Error::InvalidVariableName {
                name: name.to_owned(),
                file: file.clone(),
                line,
            }));
        }
        rest = Some(&body_and_rest[end + 1..]);
        Some(Ok(Piece::Reference(VariableReference {
            name,
            default,
            line,
        })))
    })
}

/// Whether `name` is ASCII letters, digits and `_`, not starting with a digit.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file() -> &'static Path {
        Path::new("pool.yaml")
    }

    fn env() -> Env {
        Env::from_pairs([("HOST", "db"), ("EMPTY", ""), ("PORT", "5432")])
    }

    #[test]
    fn a_set_variable_is_replaced_by_its_value() {
        assert_eq!(
            expand("host: ${HOST}\nport: ${PORT}", &env(), file()).ok(),
            Some("host: db\nport: 5432".to_owned())
        );
    }

    #[test]
    fn a_set_variable_wins_over_the_default() {
        assert_eq!(
            expand("${HOST:localhost}", &env(), file()).ok(),
            Some("db".to_owned())
        );
    }

    #[test]
    fn a_variable_set_to_the_empty_string_is_set() {
        assert_eq!(
            expand("[${EMPTY:x}]", &env(), file()).ok(),
            Some("[]".to_owned())
        );
    }

    #[test]
    fn an_unset_variable_takes_its_default_which_may_be_empty_or_contain_colons() {
        assert_eq!(
            expand("${NOPE:127.0.0.1:5432}|${NOPE:}|", &env(), file()).ok(),
            Some("127.0.0.1:5432||".to_owned())
        );
    }

    #[test]
    fn a_missing_variable_without_default_is_an_error() {
        match expand("a: 1\nb: ${NOPE}\n", &env(), file()) {
            Err(Error::MissingVariable { name, file, line }) => {
                assert_eq!(name, "NOPE");
                assert_eq!(file, Path::new("pool.yaml"));
                assert_eq!(line, 2);
            }
            other => panic!("expected MissingVariable, got {other:?}"),
        }
    }

    #[test]
    fn a_double_dollar_brace_is_a_literal_dollar_brace() {
        assert_eq!(
            expand("$${HOST} ${HOST}", &env(), file()).ok(),
            Some("${HOST} db".to_owned())
        );
    }

    #[test]
    fn a_lone_dollar_is_left_as_it_is() {
        assert_eq!(
            expand("$ $x $$ a$ $", &env(), file()).ok(),
            Some("$ $x $$ a$ $".to_owned())
        );
    }

    #[test]
    fn an_unterminated_reference_is_an_error_with_its_line() {
        assert!(matches!(
            expand("a\nb\n${HOST", &env(), file()),
            Err(Error::UnterminatedVariable { line: 3, .. })
        ));
        assert!(matches!(
            expand("${HOST\n}", &env(), file()),
            Err(Error::UnterminatedVariable { line: 1, .. })
        ));
    }

    #[test]
    fn an_invalid_name_is_an_error_with_its_line() {
        for (text, bad) in [
            ("\n${1A}", "1A"),
            ("\n${A-B}", "A-B"),
            ("\n${}", ""),
            ("\n${:x}", ""),
            ("\n${ A}", " A"),
            ("\n${É}", "É"),
        ] {
            match expand(text, &env(), file()) {
                Err(Error::InvalidVariableName { name, line, .. }) => {
                    assert_eq!((name.as_str(), line), (bad, 2), "for {text:?}");
                }
                other => panic!("expected InvalidVariableName for {text:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn only_the_defaults_that_are_used_go_through_on_default() {
        assert_eq!(
            expand_with("${HOST:x} ${NOPE:y} ${NOPE:}", &env(), file(), |d| format!(
                "<{d}>"
            ))
            .ok(),
            Some("db <y> <>".to_owned())
        );
    }

    #[test]
    fn values_are_inserted_without_being_expanded_again() {
        let env = Env::from_pairs([("A", "${B}")]);
        assert_eq!(expand("${A}", &env, file()).ok(), Some("${B}".to_owned()));
    }

    #[test]
    fn names_may_use_underscores_and_digits_after_the_first_character() {
        assert!(is_variable_name("_A1_b"));
        assert!(!is_variable_name("9"));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".*") {
            let _ = expand(&text, &env(), file());
        }

        #[test]
        fn text_without_a_dollar_comes_back_unchanged(text in "[^$]*") {
            prop_assert_eq!(expand(&text, &env(), file()).ok(), Some(text));
        }

        #[test]
        fn an_escaped_reference_round_trips(inner in "[^$}\n]*") {
            let text = format!("$${{{inner}}}");
            prop_assert_eq!(
                expand(&text, &env(), file()).ok(),
                Some(format!("${{{inner}}}"))
            );
        }
    }
}
