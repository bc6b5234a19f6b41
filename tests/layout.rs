//! The source layout's two rules, checked on the files themselves: no file of `src/` depends on
//! another that depends back on it (directly or through a longer loop), and no file grows past
//! [`MAX_LINES`].
//!
//! File A depends on file B when A names an item *defined* in B: through `use crate::…`,
//! `use super::…` or `use self::…` (globs included), or a path written in code (`crate::x::Y`).
//! Re-exports are followed to the file that defines the item and are not uses themselves, so a
//! `mod.rs` that re-exports its children's items never closes a loop by doing so. Comments and doc comments are not code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a file of `src/` may be, unit tests beside the code included.
const MAX_LINES: usize = 700;

#[derive(Debug, Default)]
struct Module {
    /// The file that holds the module's body.
    file: String,
    /// Items defined in the file, by name.
    defined: BTreeSet<String>,
    /// Submodules declared in the file.
    children: BTreeSet<String>,
    /// `use` paths of the file, expanded (`a::b::C` or `a::b::*`), each with its `pub` flag and
    /// its local name.
    uses: Vec<(Vec<String>, String, bool)>,
    /// Paths written in code outside `use` lines, relative to the crate root.
    inline: Vec<Vec<String>>,
    /// Words of the file's code, to tell which names a glob import brings in are used.
    words: BTreeSet<String>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` -> `["a", "b"]`; `src/a/mod.rs` -> `["a"]`; `src/lib.rs` -> `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("a file under src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without comments and string contents (good enough for this crate's
/// style: no raw strings holding `crate::`).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        // Unit tests beside the code are not the code's dependencies.
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let mut kept = String::new();
        let mut chars = line.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            if in_string {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    in_string = false;
                    kept.push('"');
                }
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_string = true;
            }
            kept.push(c);
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Expands one `use` tree (`a::{b, c::{D, E as F}, *}`) into full paths with local names.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').expect("a closing brace")];
        let mut base = prefix.to_vec();
        base.extend(head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(path.split("::").map(|s| s.trim().to_string()));
    if full.last().is_some_and(|s| s == "self") {
        full.pop();
    }
    let local = alias.unwrap_or_else(|| full.last().cloned().unwrap_or_default());
    out.push((full, local));
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn parse(src: &Path, file: &Path) -> (Vec<String>, Module) {
    let text = std::fs::read_to_string(file).expect("read a source file");
    let code = code_of(&text);
    let here = module_path(src, file);
    let mut module = Module {
        file: file.strip_prefix(src).unwrap().display().to_string(),
        ..Module::default()
    };
    let items = [
        "struct ", "enum ", "trait ", "type ", "fn ", "const ", "static ", "union ",
    ];
    // Items a macro defines: in a top-level invocation (`id_type!(\n    SectionId,\n ...);`),
    // each line that is one type name and a comma.
    let mut in_macro = false;
    for line in code.lines() {
        let top = line.len() == line.trim_start().len();
        if top && !line.starts_with("macro_rules!") {
            let head: String = line.chars().take_while(|&c| is_ident(c)).collect();
            if !head.is_empty() && line[head.len()..].starts_with('!') {
                in_macro = true;
                continue;
            }
        }
        if in_macro {
            if top {
                in_macro = false;
            } else {
                let name = line.trim().trim_end_matches(',');
                if line.trim().ends_with(',')
                    && name.starts_with(|c: char| c.is_ascii_uppercase())
                    && name.chars().all(is_ident)
                {
                    module.defined.insert(name.to_string());
                }
                continue;
            }
        }
        // Items at the file's top level or one level in (inside a `#[cfg]` block or an impl,
        // which defines nothing nameable by path; the over-approximation is harmless).
        let mut rest = line.trim_start();
        for prefix in ["pub(crate) ", "pub(super) ", "pub ", "async ", "unsafe "] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        if let Some(name) = rest.strip_prefix("mod ") {
            let name: String = name.chars().take_while(|&c| is_ident(c)).collect();
            if line.trim_end().ends_with(';') {
                module.children.insert(name);
            } else {
                module.defined.insert(name);
            }
            continue;
        }
        for item in items {
            if let Some(name) = rest.strip_prefix(item) {
                let name: String = name.chars().take_while(|&c| is_ident(c)).collect();
                if !name.is_empty() && line.len() - line.trim_start().len() == 0 {
                    module.defined.insert(name);
                }
            }
        }
    }
    // `use` statements, possibly over several lines.
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let lead = before[line_start..].trim();
        let is_pub = lead.starts_with("pub");
        let starts_statement = lead.is_empty() || lead.starts_with("pub");
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if starts_statement {
            let tree: String = after[..end]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let mut out = Vec::new();
            expand(&[], &tree, &mut out);
            for (path, local) in out {
                if let Some(resolved) = absolute(&here, &module.children, &path) {
                    module.uses.push((resolved, local, is_pub));
                }
            }
        }
        rest = &after[end.min(after.len())..];
    }
    // Paths written in code.
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with("use ") || code[..i].chars().last().is_some_and(is_ident) {
            continue;
        }
        let path: String = code[i..]
            .chars()
            .take_while(|&c| is_ident(c) || c == ':')
            .collect();
        let parts: Vec<String> = path
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if let Some(resolved) = absolute(&here, &BTreeSet::new(), &parts) {
            module.inline.push(resolved);
        }
    }
    let mut word = String::new();
    for c in code.chars() {
        if is_ident(c) {
            word.push(c);
        } else if !word.is_empty() {
            module.words.insert(std::mem::take(&mut word));
        }
    }
    (here, module)
}

/// A `use` path made relative to the crate root, or `None` for other crates. A path that starts
/// with a submodule of the file's own module (`use record::Delivery` in a `mod.rs`) is relative.
fn absolute(here: &[String], children: &BTreeSet<String>, path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        child if children.contains(child) => {
            let mut full = here.to_vec();
            full.extend(path.iter().cloned());
            Some(full)
        }
        "crate" => Some(rest.to_vec()),
        "self" => {
            let mut full = here.to_vec();
            full.extend(rest.iter().cloned());
            Some(full)
        }
        "super" => {
            let mut base = here.to_vec();
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            Some(base)
        }
        _ => None,
    }
}

struct Crate {
    modules: BTreeMap<Vec<String>, Module>,
}

impl Crate {
    /// The files that define what `path` names (an item, a glob of a module's names, or a
    /// module itself, which names no file).
    fn defining_files(&self, path: &[String], used_words: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.resolve(path, used_words, &mut out, 0);
        out
    }

    fn resolve(
        &self,
        path: &[String],
        used_words: &BTreeSet<String>,
        out: &mut BTreeSet<String>,
        depth: usize,
    ) {
        if depth > 16 || path.is_empty() {
            return;
        }
        // The longest prefix that is a module.
        let mut split = path.len();
        while split > 0 && !self.modules.contains_key(&path[..split]) {
            split -= 1;
        }
        let module = &self.modules[&path[..split]];
        let rest = &path[split..];
        let Some(name) = rest.first() else {
            return; // a module path names no item
        };
        if name == "*" {
            for defined in &module.defined {
                if used_words.contains(defined) {
                    out.insert(module.file.clone());
                }
            }
            for (target, local, is_pub) in &module.uses {
                if *is_pub && used_words.contains(local) {
                    self.resolve(target, used_words, out, depth + 1);
                }
            }
            return;
        }
        if module.defined.contains(name) {
            out.insert(module.file.clone());
            return;
        }
        for (target, local, _) in &module.uses {
            if local == name {
                let mut next = target.clone();
                next.extend(rest[1..].iter().cloned());
                self.resolve(&next, used_words, out, depth + 1);
            }
        }
    }
}

fn load() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules = files.iter().map(|f| parse(&src, f)).collect();
    Crate { modules }
}

/// Tarjan's strongly connected components; returns the components of more than one file.
fn loops(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

fn dependencies(krate: &Crate) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in krate.modules.values() {
        let mut targets = BTreeSet::new();
        // A re-export routes a name; it is not a use of the item.
        for (path, _, _) in module.uses.iter().filter(|(_, _, is_pub)| !is_pub) {
            targets.extend(krate.defining_files(path, &module.words));
        }
        for path in &module.inline {
            targets.extend(krate.defining_files(path, &module.words));
        }
        targets.remove(&module.file);
        edges.insert(module.file.clone(), targets);
    }
    edges
}

#[test]
fn no_file_of_src_depends_on_a_file_that_depends_back_on_it() {
    let krate = load();
    let edges = dependencies(&krate);
    // The check sees dependencies: the worker's files lean on the store, the relay core and
    // the transport, and the webhook builder on the model.
    assert!(edges.len() > 20, "{} files read", edges.len());
    let loops = loops(&edges);
    let described: Vec<String> = loops
        .iter()
        .map(|files| {
            let mut lines = vec![files.join(" <-> ")];
            for a in files {
                for b in &edges[a] {
                    if files.contains(b) {
                        lines.push(format!("    {a} uses {b}"));
                    }
                }
            }
            lines.join("\n")
        })
        .collect();
    assert!(
        loops.is_empty(),
        "import cycles in src/:\n{}",
        described.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_a_loop_written_into_it() {
    // The checker itself: two files that name each other's items form one loop; a third that
    // uses both, and a re-exporting mod.rs, do not.
    let a = "a.rs".to_string();
    let b = "b.rs".to_string();
    let c = "c.rs".to_string();
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone()]));
    edges.insert(c.clone(), BTreeSet::from([a.clone(), b.clone()]));
    assert_eq!(loops(&edges), vec![vec![a.clone(), b.clone()]]);
    edges.insert(b.clone(), BTreeSet::new());
    assert_eq!(loops(&edges), Vec::<Vec<String>>::new());

    let mut out = Vec::new();
    expand(&[], "crate::x::{A, y::{B as C, self}, *}", &mut out);
    let paths: Vec<(String, String)> = out.into_iter().map(|(p, l)| (p.join("::"), l)).collect();
    assert_eq!(
        paths,
        [
            ("crate::x::A".to_string(), "A".to_string()),
            ("crate::x::y::B".to_string(), "C".to_string()),
            ("crate::x::y".to_string(), "y".to_string()),
            ("crate::x::*".to_string(), "*".to_string()),
        ]
    );
}

#[test]
fn the_checker_sees_the_crates_real_dependencies() {
    // A dependency that exists must be found, or the cycle check proves nothing.
    let edges = dependencies(&load());
    let store = edges
        .iter()
        .find(|(file, _)| file.starts_with("store/sqlite"))
        .map(|(_, deps)| deps.clone())
        .expect("store/sqlite.rs");
    assert!(
        store.iter().any(|d| d.starts_with("delivery/")),
        "store/sqlite.rs stores deliveries: {store:?}"
    );
    // Items a macro defines are seen: the ids are `id_type!` invocations.
    let flow = edges
        .iter()
        .find(|(file, _)| file.as_str() == "listen/flow.rs")
        .map(|(_, deps)| deps.clone())
        .expect("listen/flow.rs");
    assert!(
        flow.contains("model/ids.rs"),
        "listen/flow.rs names FlowId and SectionId: {flow:?}"
    );
}

#[test]
fn no_file_of_src_is_longer_than_the_limit() {
    let krate = load();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long: Vec<(usize, &str)> = krate
        .modules
        .values()
        .map(|m| {
            let text = std::fs::read_to_string(src.join(&m.file)).expect("read");
            (text.lines().count(), m.file.as_str())
        })
        .filter(|(lines, _)| *lines > MAX_LINES)
        .collect();
    long.sort();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}
