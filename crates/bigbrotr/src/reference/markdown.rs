//! Markdown pieces of the reference.

/// A Markdown code span.
pub(super) fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(super) fn either(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// `text` safe in a table cell.
pub(super) fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A doc comment as one line of Markdown: lines and paragraphs joined,
/// intra-doc links reduced to their text, and a fenced example shown as one
/// code span (YAML in flow style).
pub(super) fn doc_line(doc: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut fence: Option<Vec<&str>> = None;
    for line in doc.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            match fence.take() {
                Some(example) => parts.push(example_span(&example)),
                None => fence = Some(Vec::new()),
            }
        } else if let Some(example) = fence.as_mut() {
            example.push(line);
        } else if !trimmed.is_empty() {
            parts.push(without_links(trimmed));
        }
    }
    if let Some(example) = fence {
        parts.push(example_span(&example));
    }
    escape(&parts.join(" "))
}

/// The lines of an example as one code span: YAML collections in flow
/// style, anything else line by line.
fn example_span(lines: &[&str]) -> String {
    let text = lines.join("\n");
    match super::written::Written::parse(&text) {
        Ok(written @ (super::written::Written::List(_) | super::written::Written::Map(_))) => {
            code(&written.flow())
        }
        _ => lines
            .iter()
            .map(|line| code(line.trim()))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// `text` with rustdoc's links reduced to their text: `` [`Seconds`] `` and
/// `` [`Seconds`](crate::duration::Seconds) `` become `` `Seconds` ``; links
/// to web pages stay.
fn without_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let label = &after[..close];
        let tail = &after[close + 1..];
        if let Some(target) = tail.strip_prefix('(') {
            let Some(end) = target.find(')') else {
                out.push_str(&rest[open..]);
                return out;
            };
            if target[..end].contains("://") {
                out.push_str(&rest[open..open + 1 + close + 1 + 1 + end + 1]);
            } else {
                out.push_str(label);
            }
            rest = &target[end + 1..];
        } else if label.starts_with('`') && label.ends_with('`') {
            out.push_str(label);
            rest = tail;
        } else {
            out.push('[');
            out.push_str(label);
            out.push(']');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// `text` safe in Markdown. Outside code spans, `<` is escaped so that
/// `<KEY>` is not taken for HTML, and `*` and `_` that could start or end
/// emphasis are escaped too (`_` inside a word, as in `max_size`, cannot).
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    let chars: Vec<char> = text.chars().collect();
    for (at, &c) in chars.iter().enumerate() {
        let word = |index: Option<usize>| {
            index
                .and_then(|index| chars.get(index))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match c {
            '`' => in_code = !in_code,
            '<' | '*' if !in_code => out.push('\\'),
            '_' if !in_code => {
                let run_start = chars[..at]
                    .iter()
                    .rposition(|&c| c != '_')
                    .map(|i| i + 1)
                    .unwrap_or(0);
                let run_end = chars[at..]
                    .iter()
                    .position(|&c| c != '_')
                    .map_or(chars.len(), |i| at + i);
                if !(word(run_start.checked_sub(1)) && word(Some(run_end))) {
                    out.push('\\');
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `lines` without the indentation they share.
fn dedent<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect()
}

/// The comment at the top of a file as Markdown: paragraphs, and indented
/// lines as blocks of text.
pub(super) fn header_markdown(lines: &[String]) -> String {
    let mut out = String::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in lines.iter().map(String::as_str).chain([""]) {
        let indented = line.starts_with(char::is_whitespace) && !line.trim().is_empty();
        if !paragraph.is_empty() && (indented || line.trim().is_empty()) {
            out.push_str(&escape(&paragraph.join(" ")));
            out.push_str("\n\n");
            paragraph.clear();
        }
        if !block.is_empty() && !indented {
            out.push_str("```text\n");
            for line in dedent(&block) {
                out.push_str(line);
                out.push('\n');
            }
            out.push_str("```\n\n");
            block.clear();
        }
        if indented {
            block.push(line);
        } else if !line.trim().is_empty() {
            paragraph.push(line.trim());
        }
    }
    out
}

/// The anchor GitHub gives a heading.
pub(super) fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doc_comment_becomes_one_line_without_rustdoc_links() {
        assert_eq!(
            doc_line(
                "Read by [`Seconds`](crate::duration::Seconds) and [`Env`];\nsee [the spec](https://example.org/a_b).\n\n\
                 For example:\n\n```yaml\n- type: console\n  level: info\n```\n<KEY> *is* [kept]."
            ),
            "Read by `Seconds` and `Env`; see [the spec](https://example.org/a_b). For example: \
             `[{type: console, level: info}]` \\<KEY> \\*is\\* [kept]."
        );
    }

    #[test]
    fn underscores_inside_words_are_left_alone() {
        assert_eq!(
            escape("max_size and _x_ and `a_*`"),
            "max_size and \\_x\\_ and `a_*`"
        );
    }
}
