//! The queue's order against a sorted reference.
use super::*;

#[test]
fn orders_by_time_then_insertion() {
    let mut q = EventQueue::new();
    q.push(SimTime(5), 'a');
    q.push(SimTime(1), 'b');
    q.push(SimTime(5), 'c');
    q.push(SimTime(1), 'd');
    q.push(SimTime(0), 'e');
    let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
    assert_eq!(order, vec!['e', 'b', 'd', 'a', 'c']);
}

#[test]
fn large_times_do_not_collide_with_sequence() {
    let mut q = EventQueue::new();
    q.push(SimTime(u64::MAX - 1), 1u8);
    q.push(SimTime(3), 2u8);
    assert_eq!(q.pop(), Some((SimTime(3), 2)));
    assert_eq!(q.pop(), Some((SimTime(u64::MAX - 1), 1)));
    assert!(q.is_empty());
}

/// Against a sorted reference: random times with many ties, pushes
/// interleaved with pops, as a simulation does.
#[test]
fn matches_a_sorted_reference_under_interleaving() {
    let mut q = EventQueue::new();
    let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, seq)
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seq = 0u64;
    let mut now = 0u64;
    for round in 0..20_000 {
        let pushes = next() % 3;
        for _ in 0..pushes {
            let t = now + next() % 50;
            q.push(SimTime(t), seq);
            reference.push((t, seq));
            seq += 1;
        }
        if round % 2 == 0 || pushes == 0 {
            let want = reference.iter().copied().min();
            if let Some(w) = want {
                reference.retain(|&r| r != w);
            }
            let got = q.pop().map(|(t, e)| (t.0, e));
            assert_eq!(got, want, "round {round}");
            if let Some((t, _)) = got {
                assert!(t >= now);
                now = t;
            }
        }
        assert_eq!(q.len(), reference.len());
    }
}
