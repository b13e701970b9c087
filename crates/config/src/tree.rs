//! Helpers on raw YAML trees, for configuration read without a typed struct.

use serde_yaml::Value;

/// The value at a dotted `path` such as `database.pool.max_size`; a segment
/// made of digits indexes a sequence (`logging.outputs.0.level`). The empty
/// path is `value` itself. `None` when some segment does not exist.
#[must_use]
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.')
        .try_fold(value, |value, segment| match untagged(value) {
            Value::Mapping(map) => map.get(segment),
            Value::Sequence(items) => items.get(segment.parse::<usize>().ok()?),
            _ => None,
        })
}

/// `value` without its YAML tags.
fn untagged(mut value: &Value) -> &Value {
    while let Value::Tagged(tagged) = value {
        value = &tagged.value;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("valid YAML")
    }

    #[test]
    fn a_path_walks_maps_and_sequences() {
        let tree =
            yaml("database:\n  pool:\n    max_size: 7\nlogging:\n  outputs:\n    - level: info\n");
        assert_eq!(
            get_path(&tree, "database.pool.max_size"),
            Some(&Value::from(7))
        );
        assert_eq!(
            get_path(&tree, "logging.outputs.0.level"),
            Some(&Value::from("info"))
        );
        assert_eq!(get_path(&tree, ""), Some(&tree));
    }

    #[test]
    fn a_missing_path_is_none() {
        let tree = yaml("a: {b: [1]}\nt: !tag {c: 2}");
        assert_eq!(get_path(&tree, "a.c"), None);
        assert_eq!(get_path(&tree, "a.b.1"), None);
        assert_eq!(get_path(&tree, "a.b.x"), None);
        assert_eq!(get_path(&tree, "a.b.0.z"), None);
        assert_eq!(get_path(&tree, "t.c"), Some(&Value::from(2)));
    }
}
