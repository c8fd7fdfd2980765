//! Finds the line and column of a key path (`services[2].ports[0].node_port`)
//! in a TOML text, so errors found after parsing still point at the file.

use toml_edit::{Document, Item, Value};

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a toml_edit::Table),
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

/// 1-based (line, column) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// A TOML text parsed once, for many lookups.
pub struct Locator {
    text: String,
    doc: Option<Document<String>>,
    cache: std::cell::RefCell<std::collections::HashMap<String, Option<(usize, usize)>>>,
}

impl Locator {
    /// Parses `text` (a text that does not parse locates nothing).
    pub fn new(text: &str) -> Locator {
        let doc = Document::parse(text.to_string()).ok().or_else(|| Document::parse(widen_integers(text)).ok());
        Locator { text: text.to_string(), doc, cache: Default::default() }
    }

    /// The (line, column) where `path` is written, or of the deepest part
    /// of it that exists.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        if let Some(hit) = self.cache.borrow().get(path) {
            return *hit;
        }
        let found = self.doc.as_ref().and_then(|d| locate_in(&self.text, d, path));
        self.cache.borrow_mut().insert(path.to_string(), found);
        found
    }
}

/// `text` with every decimal integer too large for TOML's 64-bit signed
/// integers (a `seed` above 2^63, which the scenario's own parser reads as
/// `u64`) written as a float of the same length, so the document parses
/// for locating keys and every span stays where it was.
fn widen_integers(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit() && (i == 0 || matches!(b[i - 1], b' ' | b'=' | b'[' | b',' | b'\t'));
        if starts {
            let end = (i..b.len()).find(|&j| !b[j].is_ascii_digit()).unwrap_or(b.len());
            let digits = &text[i..end];
            if end - i >= 3 && digits.parse::<i64>().is_err() {
                out.push_str("1e");
                out.push_str(&"0".repeat(end - i - 2));
            } else {
                out.push_str(digits);
            }
            i = end;
        } else {
            let ch = text[i..].chars().next().expect("inside the text");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The (line, column) where `path` is written in `text`, or of the deepest
/// part of it that exists.
#[cfg(test)]
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    locate_in(text, &Document::parse(text.to_string()).ok()?, path)
}

fn locate_in(text: &str, doc: &Document<String>, path: &str) -> Option<(usize, usize)> {
    let mut node = Node::Table(doc.as_table());
    let mut best = None;
    for seg in segments(path) {
        let (next, span) = match (node, seg) {
            (Node::Table(t), Seg::Key(k)) => {
                let span = t.key(k).and_then(|k| k.span());
                (t.get(k).map(Node::Item), span)
            }
            (Node::Item(Item::Table(t)), Seg::Key(k)) => {
                let span = t.key(k).and_then(|k| k.span());
                (t.get(k).map(Node::Item), span)
            }
            (Node::Item(Item::Value(Value::InlineTable(t))), Seg::Key(k))
            | (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => {
                let span = t.key(k).and_then(|k| k.span());
                (t.get(k).map(Node::Value), span)
            }
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => {
                let t = a.get(i);
                (t.map(Node::Table), t.and_then(|t| t.span()))
            }
            (Node::Item(Item::Value(Value::Array(a))), Seg::Index(i))
            | (Node::Value(Value::Array(a)), Seg::Index(i)) => {
                let v = a.get(i);
                (v.map(Node::Value), v.and_then(|v| v.span()))
            }
            _ => (None, None),
        };
        if let Some(s) = span {
            best = Some(s.start);
        }
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    best.map(|o| line_col(text, o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let text = "seed = 1\n\n[[services]]\nname = \"a\"\nports = [{ port = 80 }]\n\n[[services]]\nname = \"b\"\nports = [{ port = 80, node_port = 99 }]\n";
        assert_eq!(locate(text, "seed"), Some((1, 1)));
        assert_eq!(locate(text, "services[1].name"), Some((8, 1)));
        assert_eq!(locate(text, "services[1].ports[0].node_port"), Some((9, 23)));
        // A missing key falls back to the deepest part that exists.
        assert_eq!(locate(text, "services[1].ports[0].nope").map(|l| l.0), Some(9));
    }

    #[test]
    fn a_seed_above_i64_still_lets_later_keys_be_found() {
        let text = "seed = 18446744073709551615
[[flows]]
name = \"a\"
rate = -5
";
        assert_eq!(Locator::new(text).locate("flows[0].rate"), Some((4, 1)));
        assert_eq!(widen_integers(text).len(), text.len());
        assert!(widen_integers("x = 12\ny = [99999999999999999999]").ends_with("[1e000000000000000000]"));
    }
}
