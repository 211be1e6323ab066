//! A table as data, rendered to GitHub markdown or to HTML, so `report.md`
//! and `report.html` show the same numbers from one builder.

use std::fmt::Write as _;

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
    /// Verdict columns.
    Center,
}

/// A table: a header row, one alignment per column, and rows of plain-text cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Column alignments (same length as `header`).
    pub align: Vec<Align>,
    /// Rows of cells (each the same length as `header`).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with the given columns and no rows.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            header: columns.iter().map(|(h, _)| (*h).to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a column to the header.
    pub fn push_column(&mut self, title: &str, align: Align) {
        self.header.push(title.to_string());
        self.align.push(align);
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// GitHub-flavoured markdown, ending with a newline.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let cells = |row: &[String]| {
            let escaped: Vec<String> = row.iter().map(|c| markdown_cell(c)).collect();
            format!("| {} |\n", escaped.join(" | "))
        };
        out.push_str(&cells(&self.header));
        let divider: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => ":---",
                Align::Right => "---:",
                Align::Center => ":---:",
            })
            .collect();
        let _ = writeln!(out, "|{}|", divider.join("|"));
        for row in &self.rows {
            out.push_str(&cells(row));
        }
        out
    }

    /// An HTML `<table>` with escaped cells, ending with a newline.
    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for (h, a) in self.header.iter().zip(&self.align) {
            let _ = write!(out, "<th class=\"{}\">{}</th>", class(*a), escape_html(h));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (c, a) in row.iter().zip(&self.align) {
                let _ = write!(out, "<td class=\"{}\">{}</td>", class(*a), escape_html(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }
}

fn class(a: Align) -> &'static str {
    match a {
        Align::Left => "l",
        Align::Right => "r",
        Align::Center => "c",
    }
}

/// Text made safe for one markdown table cell: on one line, `|` escaped,
/// and a `<` that could open an HTML tag written as `&lt;` (a `<` before a
/// space or a digit, as in `p < 0.01`, stays as it is).
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) =>
            {
                out.push_str("&lt;")
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The markdown's verdict emoji in HTML as a mark that needs no emoji font:
/// a small inline SVG and a word, coloured (`✅` alone reads `passed`, `❌`
/// alone `failed`; `✅ yes` reads `yes`). `html` is escaped HTML.
pub fn marks_html(html: &str) -> String {
    const MARKS: [(char, &str, &str); 4] = [
        ('✅', "pass", "passed"),
        ('❌', "fail", "failed"),
        ('⚠', "warn", "warning"),
        ('⏹', "stop", "stopped"),
    ];
    let mut out = html.to_string();
    for (ch, class, word) in MARKS {
        if !out.contains(ch) {
            continue;
        }
        let mark = |text: &str| {
            format!(
                "<span class=\"mk {class}\"><svg viewBox=\"0 0 16 16\" aria-hidden=\"true\">{}</svg>{text}</span>",
                icon(class)
            )
        };
        // A cell that is only the mark gets its word.
        out = out.replace(&format!(">{ch}<"), &format!(">{}<", mark(word)));
        out = out.replace(&format!("{ch}\u{fe0f} "), &format!("{} ", mark("")));
        out = out.replace(&format!("{ch} "), &format!("{} ", mark("")));
        out = out.replace(ch, &mark(""));
    }
    out
}

/// The drawing of a mark: a filled circle with a tick, a cross, a `!` or a square.
fn icon(class: &str) -> &'static str {
    match class {
        "pass" => {
            "<circle cx=\"8\" cy=\"8\" r=\"8\" fill=\"currentColor\"/>\
             <path d=\"M4.5 8.5l2.3 2.3 4.7-5\" stroke=\"#fff\" stroke-width=\"2\" fill=\"none\"/>"
        }
        "fail" => {
            "<circle cx=\"8\" cy=\"8\" r=\"8\" fill=\"currentColor\"/>\
             <path d=\"M5 5l6 6M11 5l-6 6\" stroke=\"#fff\" stroke-width=\"2\"/>"
        }
        "warn" => {
            "<path d=\"M8 1l7.5 14h-15z\" fill=\"currentColor\"/>\
             <path d=\"M8 6v4.5M8 12v1.5\" stroke=\"#fff\" stroke-width=\"1.8\"/>"
        }
        _ => "<rect x=\"2\" y=\"2\" width=\"12\" height=\"12\" rx=\"2\" fill=\"currentColor\"/>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_escape_their_special_characters() {
        let mut t = Table::new(&[("a|b", Align::Left), ("n", Align::Right)]);
        t.push(vec!["<x>".into(), "1".into()]);
        assert_eq!(
            t.to_markdown(),
            "| a\\|b | n |\n|:---|---:|\n| &lt;x> | 1 |\n"
        );
        assert!(t.to_html().contains("<td class=\"l\">&lt;x&gt;</td>"));
    }

    #[test]
    fn a_cell_stays_one_line_and_opens_no_html() {
        assert_eq!(
            markdown_cell("boom\n\n**ok** | <script>x</script>"),
            "boom  **ok** \\| &lt;script>x&lt;/script>"
        );
        assert_eq!(markdown_cell("p < 0.01; rps <5"), "p < 0.01; rps <5");
    }

    #[test]
    fn verdict_emoji_become_marks_with_words() {
        let html = marks_html("<td>✅</td><td>❌ no</td><p>Result: ✅ passed</p>");
        assert!(!html.contains(['✅', '❌']), "{html}");
        assert!(html.contains("<td><span class=\"mk pass\"><svg"), "{html}");
        assert!(html.contains("</svg>passed</span></td>"), "{html}");
        assert!(html.contains("</svg></span> no</td>"), "{html}");
        assert!(html.contains("</svg></span> passed</p>"), "{html}");
    }
}
