//! Scenario text transforms: `count` templates with `{i}` expressions, and
//! setting a key path (for sweeps).

use super::Ctx;

/// Replaces `{i}` in `text` with `i`, and `{i*K}`, `{i+K}`, `{i*K+M}` with
/// the arithmetic (K, M non-negative integers).
pub(super) fn substitute_str(text: &str, i: u32) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{i") {
        out.push_str(&rest[..open]);
        let tail = &rest[open + 1..];
        let Some(close) = tail.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let expr = &tail[..close];
        let value = eval_index(expr, i as u64);
        match value {
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str(&rest[open..open + 2 + close]),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `i`, `i*K`, `i+K` or `i*K+M` at `i`.
fn eval_index(expr: &str, i: u64) -> Option<u64> {
    let e = expr.strip_prefix('i')?;
    let (mul, add) = match e.split_once('+') {
        Some((m, a)) => (m, a.parse().ok()?),
        None => (e, 0),
    };
    let mul = if mul.is_empty() { 1 } else { mul.strip_prefix('*')?.parse().ok()? };
    Some(i * mul + add)
}

/// Substitutes `{i}` expressions in every string (and table key) of `v`.
fn substitute(v: toml::Value, i: u32) -> toml::Value {
    let sub = |s: &str| substitute_str(s, i);
    match v {
        toml::Value::String(s) => toml::Value::String(sub(&s)),
        toml::Value::Array(a) => toml::Value::Array(a.into_iter().map(|x| substitute(x, i)).collect()),
        toml::Value::Table(t) => toml::Value::Table(t.into_iter().map(|(k, x)| (sub(&k), substitute(x, i))).collect()),
        other => other,
    }
}

/// Expands entries with `count = n` into n copies with `{i}` substituted.
/// Each copy keeps the index of the entry it came from, for errors.
/// Refuses (at `list[k].count`) an expansion past `max` entries in all,
/// before any is made.
pub(super) fn expand<T>(
    ctx: &Ctx,
    list: &str,
    items: &[T],
    max: u32,
    count: impl Fn(&mut T) -> Option<u32>,
) -> Result<Vec<(usize, T)>, String>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    let mut out = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let mut item = item.clone();
        match count(&mut item) {
            None => out.push((k, item)),
            Some(n) => {
                let total = out.len() as u64 + n as u64 + (items.len() - k - 1) as u64;
                if total > max as u64 {
                    return Err(ctx.err(
                        &format!("{list}[{k}].count"),
                        format!("{n} would make {total} {list}, more than emu's limit of {max}"),
                    ));
                }
                let v = toml::Value::try_from(&item).map_err(|e| ctx.err(&format!("{list}[{k}]"), e))?;
                for i in 0..n {
                    let t = substitute(v.clone(), i)
                        .try_into()
                        .map_err(|e: toml::de::Error| ctx.err(&format!("{list}[{k}]"), e.message()))?;
                    out.push((k, t));
                }
            }
        }
    }
    Ok(out)
}

pub(super) fn display_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets `path` (`proxy.mode`, `services[0].count`) in `root` to `value`,
/// creating missing tables on the way.
pub(super) fn set_path(root: &mut toml::Value, path: &str, value: toml::Value) -> Result<(), String> {
    let mut segs: Vec<(&str, Option<usize>)> = Vec::new();
    for part in path.split('.') {
        let (key, idx) = match part.split_once('[') {
            Some((k, rest)) => {
                let i = rest.trim_end_matches(']').parse().map_err(|_| format!("bad index in `{part}`"))?;
                (k, Some(i))
            }
            None => (part, None),
        };
        segs.push((key, idx));
    }
    let mut cur = root;
    for (n, (key, idx)) in segs.iter().enumerate() {
        let last = n + 1 == segs.len();
        let table = cur.as_table_mut().ok_or_else(|| format!("`{key}` is not inside a table"))?;
        if last && idx.is_none() {
            table.insert(key.to_string(), value);
            return Ok(());
        }
        let next = table.entry(key.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match idx {
            None => next,
            Some(i) => {
                let arr = next.as_array_mut().ok_or_else(|| format!("`{key}` is not a list"))?;
                let len = arr.len();
                let slot = arr.get_mut(*i).ok_or_else(|| format!("`{key}` has {len} entries, no [{i}]"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
    }
    unreachable!("the loop returns at the last segment")
}
#[cfg(test)]
mod subst_tests {
    use super::substitute_str;

    #[test]
    fn index_expressions() {
        assert_eq!(substitute_str("svc-{i}", 7), "svc-7");
        assert_eq!(substitute_str("<NodeIP>:{i+30000}", 5), "<NodeIP>:30005");
        assert_eq!(substitute_str("app-{i*20}-{i*2+1}", 3), "app-60-7");
        assert_eq!(substitute_str("{j} and {i", 3), "{j} and {i");
        assert_eq!(substitute_str("{ix}", 3), "{ix}");
    }
}
