//! The source tree's layering (docs/design.md, "Layout"): every module of
//! `src/` uses only modules of layers below its own, so data flows one way
//! and no circle of imports can come back; and inside a folder, the files
//! use each other without a circle either. Unit-test modules (`mod tests`
//! blocks) may reach anywhere.
//!
//! A use is any path that names a module: `crate::storage::…`, a group
//! `crate::{storage::…, write::…}`, a crate-root re-export (`crate::Writer`
//! is `write`'s), `super::…` (resolved against the file's place), with or
//! without spaces around `::`. Comments and doc comments are not uses: a
//! doc link may point anywhere.

use std::collections::{BTreeMap, BTreeSet};
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
    ("follow", 6),
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

/// The module path of a source file: `src/storage/fs.rs` is
/// `["storage", "fs"]`, `src/storage/mod.rs` is `["storage"]`, `src/lib.rs`
/// is `["lib"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_str()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// `text` without its comment lines (doc comments included).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` without the unit-test module that follows its `cfg(test)`
/// attribute (only that block's braces).
fn without_tests(text: &str) -> String {
    const TESTS: &str = "#[cfg(all(test, not(feature = \"loom\")))]\nmod tests {";
    let Some(start) = text.find(TESTS) else {
        return text.to_owned();
    };
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let end = start + i + 1;
                    return format!("{}{}", &text[..start], without_tests(&text[end..]));
                }
            }
            _ => {}
        }
    }
    text[..start].to_owned()
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first name of each path in a `{…}` group starting at `s` (after
/// its `{`).
fn group(s: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut at_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_start = true,
            c if at_start && (c.is_ascii_alphabetic() || c == '_') => {
                names.push(ident(&s[i..]));
                at_start = false;
            }
            c if at_start && !c.is_whitespace() => at_start = false,
            _ => {}
        }
    }
    names
}

/// The names that paths in `text` take from the crate root (`crate::x`,
/// and `super::…::x` climbing out of `module`), with their line numbers.
fn root_uses(text: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line: String = line
            .split("::")
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("::");
        let mut rest = line.as_str();
        while let Some(at) = rest.find("crate::").or_else(|| rest.find("super::")) {
            let crate_first = rest[at..].starts_with("crate::");
            let mut path = &rest[at..];
            // Where the path starts: the crate root, or as many levels up
            // from this file's module as it says `super`.
            let depth = if crate_first {
                path = &path["crate::".len()..];
                0
            } else {
                let mut up = 0;
                while let Some(next) = path.strip_prefix("super::") {
                    path = next;
                    up += 1;
                }
                module.len().saturating_sub(up)
            };
            rest = path;
            let mut names: Vec<&str> = Vec::new();
            if let Some(inner) = path.strip_prefix('{') {
                names.extend(group(inner));
            } else {
                names.push(ident(path));
            }
            for name in names {
                let top = if depth == 0 {
                    name.to_owned()
                } else {
                    module[0].clone()
                };
                if !top.is_empty() {
                    found.push((n + 1, top));
                }
            }
        }
    }
    found
}

/// The crate-root re-exports of `lib.rs`: public name → the module that
/// defines it.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let flat = lib.replace('\n', " ");
    for stmt in flat.split(';') {
        let Some(at) = stmt.find("pub use crate::") else {
            continue;
        };
        let path = &stmt[at + "pub use crate::".len()..];
        let module = ident(path).to_owned();
        let names = match path.find('{') {
            Some(brace) => group(&path[brace + 1..]),
            None => vec![path.rsplit("::").next().unwrap_or("").trim()],
        };
        for name in names {
            map.insert(name.to_owned(), module.clone());
        }
    }
    map
}

struct Tree {
    /// Each file's module path and its text without its tests.
    files: Vec<(PathBuf, Vec<String>, String)>,
    layers: BTreeMap<String, u32>,
    reexports: BTreeMap<String, String>,
}

fn tree() -> Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    paths.sort();
    let files = paths
        .iter()
        .map(|p| {
            let text = code_only(&without_tests(&std::fs::read_to_string(p).unwrap()));
            (p.clone(), module_path(&src, p), text)
        })
        .collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    Tree {
        files,
        layers: LAYERS.iter().map(|&(m, l)| (m.to_owned(), l)).collect(),
        reexports: reexports(&lib),
    }
}

/// The top-level module a used root name belongs to, if it is one.
fn owner(tree: &Tree, name: &str) -> Option<String> {
    if tree.layers.contains_key(name) {
        return Some(name.to_owned());
    }
    tree.reexports.get(name).cloned()
}

fn upward_uses(tree: &Tree) -> Vec<String> {
    let mut wrong = Vec::new();
    for (file, module, text) in &tree.files {
        let own_name = &module[0];
        let Some(&own) = tree.layers.get(own_name) else {
            wrong.push(format!(
                "{}: module `{own_name}` has no layer",
                file.display()
            ));
            continue;
        };
        for (line, name) in root_uses(text, module) {
            let Some(dep) = owner(tree, &name) else {
                continue;
            };
            let layer = tree.layers[&dep];
            if dep != *own_name && layer >= own {
                wrong.push(format!(
                    "{}:{line}: `{own_name}` (layer {own}) uses `{dep}` (layer {layer})",
                    file.display()
                ));
            }
        }
    }
    wrong
}

/// Circles among the files of one folder (`super::x` and `crate::top::x`).
fn circles_in_folders(tree: &Tree) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, text) in &tree.files {
        if module.len() != 2 {
            continue;
        }
        let (top, me) = (&module[0], &module[1]);
        let flat = text
            .split("::")
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("::");
        for (prefix, skip) in [("super::", 0), (&*format!("crate::{top}::"), 0)] {
            let mut rest = flat.as_str();
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len() + skip..];
                let names = match rest.strip_prefix('{') {
                    Some(inner) => group(inner),
                    None => vec![ident(rest)],
                };
                for name in names {
                    if name != me && !name.is_empty() && name != "super" {
                        edges
                            .entry(format!("{top}/{me}"))
                            .or_default()
                            .insert(format!("{top}/{name}"));
                    }
                }
            }
        }
    }
    let mut wrong = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            if reaches(&edges, to, from, &mut BTreeSet::new()) {
                wrong.push(format!("{from} -> {to} -> … -> {from}"));
            }
        }
    }
    wrong
}

fn reaches(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> bool {
    if from == to {
        return true;
    }
    if !seen.insert(from.to_owned()) {
        return false;
    }
    edges
        .get(from)
        .is_some_and(|next| next.iter().any(|n| reaches(edges, n, to, seen)))
}

#[test]
fn no_module_uses_a_layer_above_or_beside_its_own() {
    let tree = tree();
    assert!(
        tree.files.len() > 20,
        "read the tree: {} files",
        tree.files.len()
    );
    assert!(
        tree.reexports.contains_key("Writer"),
        "{:?}",
        tree.reexports
    );
    let wrong = upward_uses(&tree);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_circle_among_the_files_of_a_folder() {
    let wrong = circles_in_folders(&tree());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The checks see every way of naming a module: plain paths, groups, root
/// re-exports, `super::super`, spaces around `::`; and they skip only the
/// unit-test block.
#[test]
fn the_checks_find_every_kind_of_use() {
    let module = vec!["storage".to_owned(), "fs".to_owned()];
    let text = "use crate::write::writer;\n\
                use crate::{format::x, log::Log};\n\
                use crate::Writer as W;\n\
                use super::super::truncation::plan;\n\
                fn f() { crate :: read::x(); }\n\
                use super::region::Region;\n";
    let names: Vec<String> = root_uses(text, &module)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        names,
        [
            "write",
            "format",
            "log",
            "Writer",
            "truncation",
            "read",
            "storage"
        ]
    );
    let lib = "pub use crate::write::writer::Writer;\npub use crate::read::reader::{\n    DEFAULT_SPIN, Reader,\n};";
    let map = reexports(lib);
    assert_eq!(map["Writer"], "write");
    assert_eq!(map["Reader"], "read");
    let tests = "a\n#[cfg(all(test, not(feature = \"loom\")))]\nmod tests { x { y } }\nb";
    assert_eq!(without_tests(tests), "a\n\nb");
    assert_eq!(code_only("a\n  /// crate::write\n//! x\nb"), "a\n\n\nb");
}
