//! What every enforcing implementation's cost model must do.

use super::*;

fn every_model() -> Vec<Enforcer> {
    vec![Enforcer::Iptables(Default::default()), Enforcer::Ebpf(Default::default())]
}

fn verdict(allowed: bool, isolated: bool, rules: u32) -> Verdict {
    Verdict { allowed, isolated, by: allowed.then_some(0), rules }
}

#[test]
fn every_check_costs_something_and_is_below_a_microsecond_per_hundred_rules() {
    for m in every_model() {
        let open = m.check_ns(&verdict(true, false, 0));
        assert!(open > 0, "{}: an unisolated pod's check is still a lookup", m.name());
        let deep = m.check_ns(&verdict(false, true, 100));
        assert!(deep < 100 * 1_000, "{}: 100 rules cost {deep} ns", m.name());
    }
}

#[test]
fn more_rules_never_cost_less() {
    for m in every_model() {
        let mut last = 0;
        for rules in [0, 1, 2, 5, 10, 100, 1_000] {
            let c = m.check_ns(&verdict(false, true, rules));
            assert!(c >= last, "{}: {rules} rules cost {c} ns, fewer cost {last}", m.name());
            last = c;
        }
    }
}

#[test]
fn the_verdict_itself_is_not_charged_only_the_work() {
    // Allowed or denied after the same rules: the same work.
    for m in every_model() {
        assert_eq!(m.check_ns(&verdict(true, true, 7)), m.check_ns(&verdict(false, true, 7)), "{}", m.name());
    }
}

#[test]
fn iptables_grows_with_the_rules_passed_and_ebpf_does_not() {
    let ipt = Enforcer::Iptables(Default::default());
    let bpf = Enforcer::Ebpf(Default::default());
    let (a, b) = (verdict(false, true, 10), verdict(false, true, 1_000));
    assert!(ipt.check_ns(&b) > 10 * ipt.check_ns(&a) / 2, "iptables is linear in rules passed");
    assert_eq!(bpf.check_ns(&a), bpf.check_ns(&b), "eBPF is one map lookup");
    // 20 ns per rule plus a 40 ns set match (module docs).
    assert_eq!(ipt.check_ns(&b) - ipt.check_ns(&a), 990 * 60);
}
