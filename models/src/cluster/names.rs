//! Pods by (namespace, name) without a second copy of each name: a table of
//! pod ids, hashed and compared by the pods' own names. A million-pod
//! cluster keeps 4 bytes a pod here instead of a `(u32, String)` key (40
//! bytes and an allocation each).

use crate::ids::PodId;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Pods by (namespace, name). Lookups take the pods the ids index.
#[derive(Clone, Default)]
pub(crate) struct PodNames {
    table: HashTable<PodId>,
}

impl std::fmt::Debug for PodNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PodNames({} pods)", self.table.len())
    }
}

fn hash(ns: u32, name: &str) -> u64 {
    FixedState::default().hash_one((ns, name))
}

impl PodNames {
    /// The names of `n` pods, `key(i)` giving pod `i`'s (namespace, name),
    /// in pod order; and the first pod whose name an earlier pod of its
    /// namespace has (the table then holds the pods before it).
    pub(crate) fn new<'a>(n: usize, key: impl Fn(usize) -> (u32, &'a str)) -> (PodNames, Option<usize>) {
        let mut table = HashTable::with_capacity(n);
        let rehash = |id: &PodId| {
            let (ns, name) = key(id.index());
            hash(ns, name)
        };
        for i in 0..n {
            let (ns, name) = key(i);
            let h = hash(ns, name);
            if table.find(h, |id: &PodId| key(id.index()) == (ns, name)).is_some() {
                return (PodNames { table }, Some(i));
            }
            table.insert_unique(h, PodId::from_index(i), rehash);
        }
        (PodNames { table }, None)
    }

    /// Pod `name` of namespace `ns`, `key(id)` giving a pod's (namespace,
    /// name).
    pub(crate) fn get<'a>(&self, ns: u32, name: &str, key: impl Fn(PodId) -> (u32, &'a str)) -> Option<PodId> {
        self.table.find(hash(ns, name), |&id| key(id) == (ns, name)).copied()
    }
}
