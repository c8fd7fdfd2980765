//! The report (`emu run --plot`, `emu plot DIR`): every chart is an SVG
//! document with its title, axes and the series it should have; `emu plot`
//! on results makes the same charts as `--plot`; the page loads in a real
//! headless Chromium without errors and every chart is drawn in its DOM
//! (skipped, with a notice, where no Chromium is installed).

use std::path::Path;
use std::process::Command;

use crate::util::{emu, root, run_ok, stderr};

/// The text of every `<text>` element of an SVG document, trimmed.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("a chart is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    root.descendants().filter(|n| n.has_tag_name("text")).map(|n| n.text().unwrap_or("").trim().to_string()).collect()
}

fn count(svg: &str, tag: &str) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants().filter(|n| n.has_tag_name(tag)).count()
}

fn chart(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join("plots").join(name)).unwrap_or_else(|e| panic!("plots/{name}: {e}"))
}

#[test]
fn a_sweeps_charts_have_one_line_per_mode_against_the_number_of_services() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("modes");
    run_ok(&root().join("workloads/validation/kube-proxy-modes.toml"), &out, &["--plot"]);
    let mut files: Vec<String> = std::fs::read_dir(out.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for f in ["sweep-latency_p50_us.svg", "sweep-latency_p99_us.svg", "sweep-throughput_rps.svg", "hops.svg"] {
        assert!(files.contains(&f.to_string()), "{f} in {files:?}");
    }
    for f in &files {
        let t = texts(&chart(&out, f));
        assert!(!t[0].is_empty(), "{f} has a title");
    }
    // Every chart as the library makes it from the CSV files: the file
    // written, its title first, each series named once in its legend.
    let made = emu::plot::charts(&out).unwrap();
    assert_eq!(made.len(), files.len());
    for c in &made {
        assert_eq!(c.svg, chart(&out, &c.file), "{}", c.file);
        let t = texts(&c.svg);
        assert_eq!(t[0], c.title, "{}", c.file);
        assert!(!c.series.is_empty(), "{}", c.file);
        for name in &c.series {
            assert_eq!(t.iter().filter(|x| *x == name).count(), 1, "{}: series {name} in {t:?}", c.file);
        }
    }
    let p99 = chart(&out, "sweep-latency_p99_us.svg");
    let t = texts(&p99);
    assert_eq!(t[0], "latency p99 against services[0].count");
    for s in ["proxy.mode = iptables", "proxy.mode = nftables", "proxy.mode = ipvs"] {
        assert_eq!(t.iter().filter(|x| *x == s).count(), 1, "{s}: {t:?}");
    }
    assert!(t.contains(&"latency p99 [us]".to_string()) && t.contains(&"services[0].count".to_string()));
    for tick in ["5000", "10000", "30000"] {
        assert!(t.contains(&tick.to_string()), "tick {tick}: {t:?}");
    }
    // Three lines of three points each (plus their markers).
    assert!(count(&p99, "circle") >= 9, "{}", count(&p99, "circle"));
    // Where the time goes: a bar per point, the hops named in the legend.
    let hops = texts(&chart(&out, "hops.svg"));
    for s in ["dns", "iptables", "socket", "iptables, 30000: new-connections", "ipvs, 5000: new-connections"] {
        assert!(hops.contains(&s.to_string()), "{s}: {hops:?}");
    }
    // The page names every chart and shows the scenario.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for f in &files {
        assert!(html.contains(&format!("data-file=\"plots/{f}\"")), "{f}");
    }
    assert_eq!(html.matches("<figure").count(), files.len());
    assert!(html.contains("Scenario (run.toml)") && html.contains("# Resolved by emu"));
}

#[test]
fn emu_plot_makes_the_same_report_from_results_and_only_in_emus_own_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let sc = root().join("workloads/seed/paths.toml");
    run_ok(&sc, &a, &["--plot"]);
    run_ok(&sc, &b, &[]);
    assert!(!b.join("plots").exists());
    let o = emu(&["plot", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["latency.svg", "hops.svg", "throughput.svg", "p99-over-time.svg", "failures-over-time.svg", "balance.svg"]
    {
        assert_eq!(chart(&a, f), chart(&b, f), "{f}");
    }
    let lat = texts(&chart(&b, "latency.svg"));
    for s in ["p50", "p90", "p99", "p99.9", "pod-to-service", "internet-to-nodeport", "latency [us]"] {
        assert!(lat.contains(&s.to_string()), "{s}: {lat:?}");
    }
    // Five flows, four percentiles: twenty bars (and the legend's four).
    assert!(count(&chart(&b, "latency.svg"), "rect") >= 24);
    // Again: the old report is replaced, nothing else is left behind.
    let o = emu(&["plot", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let left: Vec<String> =
        std::fs::read_dir(&b).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(left.iter().all(|n| !n.starts_with('.')), "{left:?}");
    // The results directory with its report is still emu's to replace.
    run_ok(&sc, &b, &[]);
    assert!(!b.join("plots").exists(), "a run without --plot replaces the old report too");
    // A file of the user's in plots/, or a page emu did not write: the
    // directory is no longer emu's, for `emu plot` and for `emu run`.
    let o = emu(&["plot", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(b.join("plots/my-figure.pdf"), "mine").unwrap();
    let o = emu(&["plot", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("my-figure.pdf") || stderr(&o).contains("`plots`"), "{}", stderr(&o));
    let o = emu(&["run", sc.to_str().unwrap(), "--out", b.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(b.join("plots/my-figure.pdf")).unwrap(), "mine");
    std::fs::remove_file(b.join("plots/my-figure.pdf")).unwrap();
    std::fs::write(b.join("index.html"), "<h1>my notes</h1>").unwrap();
    let o = emu(&["plot", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(b.join("index.html")).unwrap(), "<h1>my notes</h1>");
    // Not emu's: refused, nothing written.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let o = emu(&["plot", mine.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no run.toml"), "{}", stderr(&o));
    std::fs::write(mine.join("run.toml"), "seed = 1\n").unwrap();
    let o = emu(&["plot", mine.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("emu did not write"), "{}", stderr(&o));
    let mut left: Vec<String> =
        std::fs::read_dir(&mine).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["notes.txt", "run.toml"]);
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
}

#[test]
fn the_report_loads_in_a_headless_chromium_and_every_chart_is_drawn() {
    let Some(browser) = chromium() else {
        eprintln!("notice: no chromium here: the browser check of the report is skipped (.ci/run installs it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("modes");
    run_ok(&root().join("workloads/validation/kube-proxy-modes.toml"), &out, &["--plot"]);
    let url = format!("file://{}", out.join("index.html").display());
    let o = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--dump-dom", &url])
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8(o.stdout).unwrap();
    let log = String::from_utf8_lossy(&o.stderr);
    // No script error or console message from the page.
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "{console:?}");
    // The page's script ran after every chart was parsed into the DOM.
    let figures = std::fs::read_dir(out.join("plots")).unwrap().count();
    assert!(dom.contains(&format!("data-charts=\"{figures}\"")), "{}", &dom[..dom.len().min(400)]);
    // Each chart is drawn: an <svg> with shapes and text in its figure.
    for fig in dom.split("<figure").skip(1) {
        let svg = &fig[..fig.find("</figure>").unwrap()];
        assert!(svg.contains("<svg"), "{}", &svg[..200.min(svg.len())]);
        assert!(svg.matches("<text").count() >= 5);
        assert!(svg.contains("<polyline") || svg.contains("<rect"));
    }
    assert_eq!(dom.matches("<figure").count(), figures);
}

#[test]
fn replications_are_charted_as_one_run_and_sweep_lines_follow_their_x_axis() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    run_ok(&root().join("workloads/seed/pod-to-service.toml"), &out, &["--replications", "2", "--plot"]);
    assert!(out.join("plots/latency.svg").exists(), "replications are no sweep");
    assert!(!out.join("plots/sweep-latency_p50_us.svg").exists());
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("charts show replication 0"));
    // A sweep written out of order: the points of each line in x order.
    let sc = tmp.path().join("s.toml");
    let text = std::fs::read_to_string(root().join("workloads/seed/pod-to-service.toml")).unwrap();
    std::fs::write(
        &sc,
        format!("{text}\n[sweep]\n\"flows[0].requests\" = [300, 100, 200]\n")
            .replace("manifests = [\"", &format!("manifests = [\"{}/", root().join("workloads/seed").display())),
    )
    .unwrap();
    let out = tmp.path().join("s");
    run_ok(&sc, &out, &["--plot"]);
    let svg = chart(&out, "sweep-throughput_rps.svg");
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let lines: Vec<Vec<f64>> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width").is_some_and(|w| w != "1"))
        .map(|n| {
            n.attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| p.split(',').next().unwrap().parse().unwrap())
                .collect()
        })
        .collect();
    // (Legend entries are two-point lines.)
    let lines: Vec<&Vec<f64>> = lines.iter().filter(|xs| xs.len() > 2).collect();
    assert_eq!(lines.len(), 1, "{svg}");
    for xs in lines {
        assert_eq!(xs.len(), 3);
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "a line doubles back: {xs:?}");
    }
}
