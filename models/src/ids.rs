//! Typed indices: one newtype per kind of thing the models number, so a
//! pod passed where a node is expected is a compile error.
//!
//! Each id is 4 bytes and so is its `Option`: the value `v` is stored as
//! `v ^ u32::MAX` in a [`NonZeroU32`], which leaves `u32::MAX` the one value
//! an id cannot hold and gives `None` the all-zero niche. Ids order, print
//! and hash as their value ([`Ord`] compares [`get`](NodeId::get), so maps
//! keyed by ids iterate in index order, as they did with bare `u32`s).

use std::fmt;
use std::num::NonZeroU32;

macro_rules! id {
    ($(#[$doc:meta])* $vis:vis struct $name:ident;) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        $vis struct $name(NonZeroU32);

        // (A crate-private id may leave a constructor unused.)
        #[allow(dead_code)]
        impl $name {
            /// The id of index `v`. Panics at `u32::MAX`, the one value an
            /// id cannot hold.
            #[inline]
            pub const fn new(v: u32) -> Self {
                match NonZeroU32::new(v ^ u32::MAX) {
                    Some(n) => $name(n),
                    None => panic!(concat!(stringify!($name), " cannot be u32::MAX")),
                }
            }

            /// The id of index `i`. Panics at `u32::MAX` and above.
            #[inline]
            pub fn from_index(i: usize) -> Self {
                Self::new(u32::try_from(i).expect(concat!(stringify!($name), " above u32::MAX")))
            }

            /// Its value.
            #[inline]
            pub const fn get(self) -> u32 {
                self.0.get() ^ u32::MAX
            }

            /// Its value as an index into the vector it numbers.
            #[inline]
            pub const fn index(self) -> usize {
                self.get() as usize
            }
        }

        impl PartialOrd for $name {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.get().cmp(&other.get())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.get())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.get(), f)
            }
        }

        const _: () = assert!(std::mem::size_of::<$name>() == 4);
        const _: () = assert!(std::mem::size_of::<Option<$name>>() == 4);
    };
}

id! {
    /// A node: its index in [`Cluster::nodes`](crate::cluster::Cluster::nodes).
    pub struct NodeId;
}

id! {
    /// A pod: its index in [`Cluster::pods`](crate::cluster::Cluster::pods).
    pub struct PodId;
}

id! {
    /// A Service: its index in
    /// [`Cluster::services`](crate::cluster::Cluster::services).
    pub struct SvcId;
}

id! {
    /// A Service port: its index in
    /// [`Cluster::service_ports`](crate::cluster::Cluster::service_ports).
    pub struct SpId;
}

id! {
    /// An endpoint of one Service port: its index in that port's
    /// [`ServicePort::endpoints`](crate::cluster::ServicePort::endpoints)
    /// (append-only, so an endpoint keeps its id).
    pub struct EpId;
}

id! {
    /// A connection: its key in the world's connection slab.
    pub struct ConnId;
}

id! {
    /// A request: its key in the world's request slab.
    pub struct ReqId;
}

id! {
    /// A server of the world (a pod's listening port, or a node's DNS
    /// cache): its index in the world's server list.
    pub(crate) struct ServerId;
}

id! {
    /// A client of one flow: its index in the flow's
    /// [`Client::Pods`](crate::traffic::Client::Pods), or the external
    /// client's number.
    pub(crate) struct ClientId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_by_value() {
        for v in [0, 1, 7, 1 << 31, u32::MAX - 1] {
            assert_eq!(PodId::new(v).get(), v);
            assert_eq!(PodId::new(v).index(), v as usize);
        }
        let mut ids: Vec<NodeId> = [5, 0, u32::MAX - 1, 3].map(NodeId::new).to_vec();
        ids.sort();
        assert_eq!(ids.iter().map(|n| n.get()).collect::<Vec<_>>(), [0, 3, 5, u32::MAX - 1]);
        assert!(Some(NodeId::new(0)) > None);
        assert_eq!(format!("{:?} {}", SpId::new(4), SpId::new(4)), "SpId(4) 4");
    }

    #[test]
    #[should_panic(expected = "cannot be u32::MAX")]
    fn u32_max_is_no_id() {
        let _ = EpId::new(u32::MAX);
    }
}
