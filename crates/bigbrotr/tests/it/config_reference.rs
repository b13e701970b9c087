//! `docs/configuration.md` is exactly what `bigbrotr config reference`
//! prints for the shipped implementation, and the files of every shipped
//! implementation agree with their structs.

use std::process::{Command, Stdio};

use bigbrotr::{reference, REGENERATE};
use bigbrotr_config::Implementation;
use bigbrotr_test_support::workspace_root;

fn generated(name: &str) -> String {
    let implementation =
        Implementation::open(&workspace_root(), name).expect("a shipped implementation");
    reference(&implementation).unwrap_or_else(|error| panic!("{error:#}"))
}

#[test]
fn docs_configuration_md_is_the_generated_reference() {
    let generated = generated("bigbrotr");
    let written =
        std::fs::read_to_string(workspace_root().join("docs/configuration.md")).unwrap_or_default();
    if generated != written {
        let line = generated
            .lines()
            .zip(written.lines())
            .position(|(new, old)| new != old)
            .unwrap_or_else(|| generated.lines().count().min(written.lines().count()))
            + 1;
        panic!(
            "docs/configuration.md is not the configuration reference the code and the shipped \
             files give (first difference on line {line}); regenerate it from the repository \
             root with:\n  {REGENERATE}"
        );
    }
}

#[test]
fn the_command_prints_the_reference() {
    let output = Command::new(env!("CARGO_BIN_EXE_bigbrotr"))
        .arg("--root")
        .arg(workspace_root())
        .args(["config", "reference"])
        .stdin(Stdio::null())
        .output()
        .expect("bigbrotr runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8(output.stdout).expect("UTF-8") == generated("bigbrotr"),
        "`bigbrotr config reference` printed something else than the library's reference"
    );
}

#[test]
fn every_shipped_implementation_agrees_with_its_structs() {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("implementations"))
        .expect("the implementations folder")
        .map(|entry| entry.expect("a folder entry"))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().into_string().expect("a UTF-8 name"))
        .collect();
    names.sort();
    assert!(names.contains(&"lilbrotr".to_owned()), "{names:?}");
    for name in names {
        let reference = generated(&name);
        assert!(
            reference.contains(&format!("`{name}` implementation")),
            "{name}"
        );
    }
}
