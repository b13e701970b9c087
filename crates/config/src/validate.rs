//! Semantic checks of configuration values, and the problems they report.

use std::fmt;

use crate::load::ExpansionDefaults;

/// One thing wrong with a configuration: the key it concerns and what is
/// wrong with it. Displays as `pool.max_size: must be ≥ min_size (1)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The dotted key path, such as `pool.max_size` or
    /// `logging.outputs[0].level`; empty when the problem concerns the whole
    /// file.
    pub path: String,
    /// What is wrong, as a short phrase.
    pub message: String,
}

impl Problem {
    /// A problem with the key at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Shows a list of problems on one line, as `path: message; path: message`,
/// for the errors of the crates whose sections fail validation.
#[derive(Debug, Clone, Copy)]
pub struct ProblemList<'a>(pub &'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects the problems found while checking a configuration, so that all
/// of them are reported at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    problems: Vec<Problem>,
}

impl Problems {
    /// No problems yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the key at `path` has a problem.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    /// Checks `value`, prefixing the paths of its problems with `section`:
    /// `port` becomes `database.port`.
    pub fn section<V: Validate + ?Sized>(&mut self, section: &str, value: &V) {
        self.scoped(section, |problems| value.validate(problems));
    }

    /// Runs `check` and prefixes the paths of the problems it records with
    /// `prefix`.
    pub fn scoped(&mut self, prefix: &str, check: impl FnOnce(&mut Problems)) {
        let mut inner = Problems::new();
        check(&mut inner);
        self.problems
            .extend(inner.problems.into_iter().map(|problem| Problem {
                path: join_path(prefix, &problem.path),
                message: problem.message,
            }));
    }

    /// Whether no problem was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// How many problems were recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// The problems recorded so far, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.problems.iter()
    }

    /// The problems, in the order they were recorded.
    #[must_use]
    pub fn into_vec(self) -> Vec<Problem> {
        self.problems
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        self.problems.extend(iter);
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}

/// Joins two key paths with a `.`, leaving out empty parts and the dot
/// before an index such as `[0]`.
fn join_path(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_owned()
    } else if path.is_empty() {
        prefix.to_owned()
    } else if path.starts_with('[') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}.{path}")
    }
}

/// Semantic checks that types alone cannot express, such as
/// `max_size ≥ min_size`.
///
/// Implementations record every problem they find, with a path relative to
/// the value being checked; the caller prefixes it with the section name
/// through [`Problems::section`].
pub trait Validate {
    /// Records every problem of `self` in `problems`.
    fn validate(&self, problems: &mut Problems);

    /// Records the problems that depend on where values came from:
    /// `defaults` holds the keys whose values only the default of a
    /// `${VAR:default}` reference gave (neither the variable nor an override
    /// was set). Paths are from the root of the file. Nothing by default.
    fn validate_sources(&self, defaults: &ExpansionDefaults, problems: &mut Problems) {
        let _ = (defaults, problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Port(u16);

    impl Validate for Port {
        fn validate(&self, problems: &mut Problems) {
            if self.0 == 0 {
                problems.push("port", "must not be 0");
            }
        }
    }

    #[test]
    fn a_problem_displays_its_path_then_its_message() {
        assert_eq!(
            Problem::new("pool.max_size", "must be ≥ min_size (1)").to_string(),
            "pool.max_size: must be ≥ min_size (1)"
        );
    }

    #[test]
    fn a_problem_without_path_displays_only_its_message() {
        assert_eq!(
            Problem::new("", "not a mapping").to_string(),
            "not a mapping"
        );
    }

    #[test]
    fn a_section_prefixes_the_paths_of_its_problems() {
        let mut problems = Problems::new();
        problems.section("database", &Port(0));
        problems.section("other", &Port(1));
        assert_eq!(
            problems.into_vec(),
            vec![Problem::new("database.port", "must not be 0")]
        );
    }

    #[test]
    fn scoped_problems_join_indexes_without_a_dot() {
        let mut problems = Problems::new();
        problems.scoped("outputs", |p| p.push("[2]", "bad"));
        problems.scoped("", |p| p.push("level", "bad"));
        problems.scoped("whole", |p| p.push("", "bad"));
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["outputs[2]", "level", "whole"]);
    }

    #[test]
    fn problems_count_and_extend() {
        let mut problems = Problems::new();
        assert!(problems.is_empty());
        problems.extend([Problem::new("a", "x"), Problem::new("b", "y")]);
        assert_eq!(problems.len(), 2);
        assert_eq!((&problems).into_iter().count(), 2);
        assert!(!problems.is_empty());
    }
}
