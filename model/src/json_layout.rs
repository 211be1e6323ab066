//! JSON indented only to a depth: the outline of a report on its own lines,
//! each record (an action, a queue series, a column of buckets) on
//! one compact line, so the file stays readable and diffable without
//! spending a line and an indent on every number.
//!
//! A [`Layout`] says where records start. The root value is at depth 0, its
//! fields' values at depth 1, and so on. Containers at depths up to
//! [`Layout::indent_to`] are indented as `serde_json`'s pretty printer does,
//! except that the elements of arrays at depths from [`Layout::records_from`]
//! on are each written compact on one line; everything deeper than
//! `indent_to` is compact.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io::{self, Write};

/// Where a JSON document stops being indented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Elements of arrays at this depth or deeper are one line each.
    pub records_from: usize,
    /// Containers deeper than this are written on one line.
    pub indent_to: usize,
}

impl Layout {
    /// `results.json` ([`crate::run::RunReport`]): run (0), cases (1), a
    /// case (2), its load, actions and evidence (3), the load's buckets,
    /// failures, the evidence's queue series (4), their columns (5).
    pub const RUN: Layout = Layout {
        records_from: 3,
        indent_to: 4,
    };
    /// `loadgen --json` ([`crate::load::LoadReport`]): the load at the root,
    /// its buckets, failures and classes (1), their columns (2).
    pub const LOAD: Layout = Layout {
        records_from: 0,
        indent_to: 1,
    };
}

/// `value` as JSON in `layout`, with a trailing newline.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, layout: Layout) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, LayoutFormatter::new(layout));
    value.serialize(&mut ser)?;
    out.push(b'\n');
    Ok(out)
}

/// One open array or object.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Its elements go on lines of their own.
    indent: bool,
    /// Containers inside it are written compact.
    compact_children: bool,
    /// At least one element was written.
    has_value: bool,
}

/// The `serde_json` formatter behind [`to_vec`].
#[derive(Debug)]
struct LayoutFormatter {
    layout: Layout,
    open: Vec<Frame>,
}

impl LayoutFormatter {
    fn new(layout: Layout) -> Self {
        LayoutFormatter {
            layout,
            open: Vec::new(),
        }
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, array: bool) -> io::Result<()> {
        let depth = self.open.len();
        let compact =
            self.open.last().is_some_and(|f| f.compact_children) || depth > self.layout.indent_to;
        self.open.push(Frame {
            indent: !compact,
            compact_children: compact || (array && depth >= self.layout.records_from),
            has_value: false,
        });
        w.write_all(if array { b"[" } else { b"{" })
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, array: bool) -> io::Result<()> {
        if let Some(frame) = self.open.pop()
            && frame.indent
            && frame.has_value
        {
            self.newline(w)?;
        }
        w.write_all(if array { b"]" } else { b"}" })
    }

    /// Before an element or a key.
    fn element<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.open.last().is_some_and(|f| f.indent) {
            self.newline(w)?;
        }
        Ok(())
    }

    fn element_done(&mut self) {
        if let Some(f) = self.open.last_mut() {
            f.has_value = true;
        }
    }

    /// A line break and the indent of the innermost open container.
    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.open.len() {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl Formatter for LayoutFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, true)
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, true)
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.element(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.element_done();
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, false)
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, false)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.element(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        let indent = self.open.last().is_some_and(|f| f.indent);
        w.write_all(if indent { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.element_done();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (A `serde_json::Value` writes its keys sorted.)
    fn text(v: &serde_json::Value, layout: Layout) -> String {
        String::from_utf8(to_vec(v, layout).unwrap()).unwrap()
    }

    #[test]
    fn the_outline_is_indented_and_records_are_one_line_each() {
        let v = json!({
            "name": "run",
            "empty": [],
            "none": {},
            "cases": [{
                "actions": [{"index": 0, "failures": [{"class": "reset", "count": 2}]}, {"index": 1}],
                "load": {
                    "config": {"url": "http://x/"},
                    "buckets": {"width_ns": 100, "ok": [1, 2, 3]},
                    "failures": [{"t_ns": 5}, {"t_ns": 6}]
                }
            }]
        });
        let out = text(&v, Layout::RUN);
        assert_eq!(
            out,
            r#"{
  "cases": [
    {
      "actions": [
        {"failures":[{"class":"reset","count":2}],"index":0},
        {"index":1}
      ],
      "load": {
        "buckets": {
          "ok": [1,2,3],
          "width_ns": 100
        },
        "config": {
          "url": "http://x/"
        },
        "failures": [
          {"t_ns":5},
          {"t_ns":6}
        ]
      }
    }
  ],
  "empty": [],
  "name": "run",
  "none": {}
}
"#
        );
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn a_load_report_has_its_records_one_level_up() {
        let v = json!({"planned": 3, "buckets": {"ok": [1, 2]}, "failures": [{"t_ns": 1}]});
        assert_eq!(
            text(&v, Layout::LOAD),
            "{\n  \"buckets\": {\n    \"ok\": [1,2]\n  },\n  \"failures\": [\n    {\"t_ns\":1}\n  ],\n  \"planned\": 3\n}\n"
        );
    }

    #[test]
    fn strings_with_escapes_and_floats_survive() {
        let v = json!({"a": [["x\"y\n", 1.5, -2, null, true]]});
        let out = text(&v, Layout::LOAD);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), v);
        assert!(out.contains(r#"["x\"y\n",1.5,-2,null,true]"#), "{out}");
    }
}
