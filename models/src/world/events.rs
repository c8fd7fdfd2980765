//! The world's events: small `Copy` records; payloads live in the world's
//! slabs.

use crate::ids::{NodeId, PodId, ReqId};

/// An event: a small `Copy` record; payloads live in the world's slabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ev {
    /// Open loop: the next request of `flow` arrives.
    Arrival {
        /// Flow index.
        flow: u32,
    },
    /// Closed loop: client `slot` of `flow` is ready to send.
    ClientReady {
        /// Flow index.
        flow: u32,
        /// Client slot.
        slot: u32,
    },
    /// The message in flight for request `req` reached the end of its leg.
    Deliver {
        /// The request.
        req: ReqId,
    },
    /// The server finished working on request `req`.
    ServiceDone {
        /// The request.
        req: ReqId,
    },
    /// The upstream resolver answered the question CoreDNS (or a node's
    /// DNS cache) forwarded for request `req`.
    Forwarded {
        /// The request.
        req: ReqId,
    },
    /// Request `req`'s message reaches the capacity hop it walked to.
    HopArrive {
        /// The request.
        req: ReqId,
    },
    /// Request `req`'s dropped message is sent again.
    Walk {
        /// The request.
        req: ReqId,
    },
    /// Request `req`'s first packet, dropped before it got anywhere (a
    /// `Local` policy without endpoint, a full conntrack table), is sent
    /// again: the SYN's retransmission, or the resolver's next try.
    Retry {
        /// The request.
        req: ReqId,
    },
    /// The earliest pending timeout of `flow` is due. Timeouts wait in a
    /// per-flow FIFO (a flow's timeout is one constant, so deadlines come in
    /// issue order) rather than in the event queue: one pending event per
    /// flow instead of one per request keeps the queue shallow.
    FlowTimeout {
        /// Flow index.
        flow: u32,
    },
    /// Change `index` of the timeline happens.
    Change {
        /// Index into the timeline.
        index: u32,
    },
    /// A pod's sandbox and containers are up.
    PodStarted {
        /// The pod.
        pod: PodId,
    },
    /// A readiness probe of a pod.
    Probe {
        /// The pod.
        pod: PodId,
    },
    /// A pod has been Ready for minReadySeconds.
    Available {
        /// The pod.
        pod: PodId,
    },
    /// A deleted pod's preStop hook is done: SIGTERM.
    Sigterm {
        /// The pod.
        pod: PodId,
    },
    /// A deleted pod's grace period is over: SIGKILL.
    Kill {
        /// The pod.
        pod: PodId,
    },
    /// A stopped pod's sandbox is torn down (CNI DEL).
    Teardown {
        /// The pod.
        pod: PodId,
    },
    /// The EndpointSlice controller writes a pod's endpoints.
    SliceSync {
        /// The pod.
        pod: PodId,
    },
    /// A node's kube-proxy starts a sync.
    SyncStart {
        /// The node.
        node: NodeId,
        /// The node's generation when it was scheduled (a failed node's
        /// pending syncs are void).
        gen: u32,
    },
    /// A node's kube-proxy sync has written its rules.
    SyncEnd {
        /// The node.
        node: NodeId,
        /// The node's generation.
        gen: u32,
        /// A periodic sync with nothing new to write: not counted in
        /// `live`.
        quiet: bool,
    },
    /// A node's periodic sync (syncPeriod); not counted as pending work.
    Resync {
        /// The node.
        node: NodeId,
    },
    /// A lost node is marked NotReady.
    NodeNotReady {
        /// The node.
        node: NodeId,
        /// The node's generation.
        gen: u32,
    },
    /// A NotReady node's pods are evicted.
    Evict {
        /// The node.
        node: NodeId,
        /// The node's generation.
        gen: u32,
    },
}
