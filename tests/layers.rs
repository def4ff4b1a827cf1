//! The source tree's layering (docs/design.md, "Layers"): every module of
//! `src/` imports only from layers below its own, so data flows one way
//! and no circle of imports can come back. Test code (`mod tests` blocks)
//! may reach anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer, bottom up.
const LAYERS: &[(&str, u32)] = &[
    ("primitives", 0),
    ("format", 0),
    ("record", 0),
    ("options", 1),
    ("error", 2),
    ("clock", 3),
    ("storage", 4),
    ("durability", 5),
    ("wake", 5),
    ("recovery", 6),
    ("shared", 7),
    ("read", 8),
    ("retention", 9),
    ("truncation", 9),
    ("write", 10),
    ("log", 11),
    ("testing", 12),
    ("lib", 12),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap();
    first.trim_end_matches(".rs").to_owned()
}

/// `crate::name` paths in `text`, with their line numbers.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
        }
    }
    found
}

/// The text of a file without its unit-test module.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(all(test, not(feature = \"loom\")))]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

#[test]
fn no_module_imports_from_a_layer_above_or_beside_its_own() {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(&own) = layers.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module `{module}` has no layer",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, dep) in crate_paths(without_tests(&text)) {
            match layers.get(dep.as_str()) {
                Some(&layer) if dep != module && layer >= own => wrong.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `{dep}` (layer {layer})",
                    file.display()
                )),
                _ => {}
            }
        }
    }
    assert!(files.len() > 20, "read the tree: {} files", files.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_layer_check_finds_an_upward_import() {
    let text = "use crate::storage::fs;\nfn f() { crate::write::writer::x(); }\n";
    let paths = crate_paths(text);
    assert_eq!(paths, [(1, "storage".to_owned()), (2, "write".to_owned())]);
    let tests = "use crate::a;\n#[cfg(all(test, not(feature = \"loom\")))]\nmod tests { crate::b }";
    assert_eq!(crate_paths(without_tests(tests)), [(1, "a".to_owned())]);
}
