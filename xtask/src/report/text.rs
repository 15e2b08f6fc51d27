//! Number formatting and escaping shared by the report's renderers.

/// A fraction as the paper prints it: times 100, one decimal (`0.6528` -> `65.3`).
pub fn pct(v: f64) -> String {
    fixed(v * 100.0, 1)
}

/// `v` with `decimals` decimals, never `-0.0`.
pub fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A training-set size as the paper prints it: `634`, `2.5k`, `8.5k`, `67k`, `393k`.
pub fn size(n: usize) -> String {
    if n < 1000 {
        n.to_string()
    } else if n < 10_000 {
        let s = fixed(n as f64 / 1000.0, 1);
        format!("{}k", s.strip_suffix(".0").unwrap_or(&s))
    } else {
        format!("{}k", (n as f64 / 1000.0).round() as usize)
    }
}

/// A markdown table cell: pipes escaped.
pub fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// LaTeX text: special characters escaped, `→` as a math arrow.
pub fn tex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '→' => out.push_str("$\\rightarrow$"),
            '±' => out.push_str("$\\pm$"),
            '≤' => out.push_str("$\\le$"),
            '×' => out.push_str("$\\times$"),
            '–' => out.push_str("--"),
            '—' => out.push_str("---"),
            _ => out.push(c),
        }
    }
    out
}

/// One CSV line (RFC 4180 quoting where needed), with its newline.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            let f = f.as_ref();
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// A CSV number: shortest round-trip form, empty for none.
pub fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// A markdown table from a header and rows (right-aligned except the first column).
pub fn md_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut s = String::new();
    s.push_str(&format!("| {} |\n", header.join(" | ")));
    let align: Vec<&str> = (0..header.len())
        .map(|i| if i == 0 { "---" } else { "---:" })
        .collect();
    s.push_str(&format!("|{}|\n", align.join("|")));
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(pct(0.6528), "65.3");
        assert_eq!(pct(-0.0001), "0.0");
        assert_eq!(pct(-0.012), "-1.2");
        assert_eq!(size(634), "634");
        assert_eq!(size(2490), "2.5k");
        assert_eq!(size(3000), "3k");
        assert_eq!(size(8551), "8.6k");
        assert_eq!(size(67349), "67k");
        assert_eq!(tex("{A,B}->B & 5%"), "\\{A,B\\}->B \\& 5\\%");
        assert_eq!(csv_line(&["a", "{x,y}", "q\""]), "a,\"{x,y}\",\"q\"\"\"\n");
    }
}
