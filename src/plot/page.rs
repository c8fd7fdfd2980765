//! `index.html`: the charts, inline (so the page is whole on its own and a
//! browser's DOM holds every chart's elements), each linking its file in
//! `plots/`, then the run's scenario as `run.toml` resolved it.

use super::Chart;

/// How every page the report writes begins (emu recognises its own by it).
pub(super) const HEAD: &str =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"emu\">\n";

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page for `charts` of the results in `dir`, whose `run.toml` is
/// `run`, with a `note` under its title.
pub fn html(charts: &[Chart], run: &str, dir: &str, note: Option<&str>) -> String {
    let mut out = String::new();
    out.push_str(HEAD);
    out.push_str(&format!("<title>emu report: {}</title>\n", esc(dir)));
    out.push_str(
        "<style>\nbody { font-family: sans-serif; margin: 2em; color: #222; }\n\
         .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1em; }\n\
         figure { margin: 0; }\nfigure svg { width: 100%; height: auto; }\n\
         figcaption { font-size: 0.9em; color: #555; }\n\
         pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }\n\
         nav a { margin-right: 1em; }\n</style>\n</head>\n<body>\n",
    );
    out.push_str(&format!("<h1>emu report: {}</h1>\n", esc(dir)));
    if let Some(n) = note {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(n)));
    }
    out.push_str("<nav>");
    for c in charts {
        out.push_str(&format!("<a href=\"#{}\">{}</a>", esc(&id(c)), esc(&c.title)));
    }
    out.push_str("<a href=\"#scenario\">scenario</a></nav>\n<main class=\"charts\">\n");
    for c in charts {
        out.push_str(&format!(
            "<figure id=\"{}\" class=\"chart\" data-file=\"plots/{}\">\n",
            esc(&id(c)),
            esc(&c.file)
        ));
        // The SVG document without its XML prolog, inline.
        let svg = c.svg.trim_start_matches(|ch| ch != '<');
        let svg = if svg.starts_with("<?xml") { svg.split_once("?>").map_or(svg, |(_, rest)| rest) } else { svg };
        out.push_str(svg.trim());
        out.push_str(&format!(
            "\n<figcaption>{} (<a href=\"plots/{}\">plots/{}</a>)</figcaption>\n</figure>\n",
            esc(&c.title),
            esc(&c.file),
            esc(&c.file)
        ));
    }
    out.push_str("</main>\n<h2 id=\"scenario\">Scenario (run.toml)</h2>\n<pre>");
    out.push_str(&esc(run));
    out.push_str("</pre>\n");
    // The page marks itself drawn once every chart's SVG is in the DOM.
    out.push_str(
        "<script>\ndocument.body.dataset.charts = document.querySelectorAll('figure.chart > svg').length;\n</script>\n",
    );
    out.push_str("</body>\n</html>\n");
    out
}

fn id(c: &Chart) -> String {
    c.file.trim_end_matches(".svg").to_string()
}
