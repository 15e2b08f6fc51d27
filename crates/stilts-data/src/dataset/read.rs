//! The readers behind [`read_file`]: TSV, CSV, JSON lines and JSON records into examples, every
//! bad row reported by file, line and field.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Example, FileContents, Label, LoadOptions, SkippedRow, hex, read_bytes};
use crate::error::{DataError, Result, RowProblem};
use crate::task::{Column, FileFormat, Layout, Target};

/// Read a file with a layout into examples for `target`.
pub fn read_file(
    path: &Path,
    layout: &Layout,
    target: &Target,
    opts: LoadOptions,
) -> Result<FileContents> {
    let bytes = read_bytes(path)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let mut sink = Sink {
        path,
        layout,
        target,
        opts,
        out: FileContents {
            examples: Vec::new(),
            skipped_unlabelled: 0,
            skipped_malformed: Vec::new(),
            sha256,
        },
        seen_ids: HashMap::new(),
    };
    match layout.format {
        FileFormat::Tsv => read_tsv(&bytes, &mut sink)?,
        FileFormat::Csv => read_csv(&bytes, &mut sink)?,
        FileFormat::Jsonl => read_jsonl(&bytes, &mut sink)?,
        FileFormat::Json => read_json(&bytes, &mut sink)?,
    }
    Ok(sink.out)
}

/// A record's fields, looked up by [`Column`].
trait Record {
    fn get(&self, column: &Column) -> std::result::Result<Option<Cow<'_, str>>, RowProblem>;
}

/// A TSV/CSV row with its header's name -> index map.
struct Row<'a> {
    fields: &'a [&'a str],
    names: &'a HashMap<String, usize>,
}

impl Record for Row<'_> {
    fn get(&self, column: &Column) -> std::result::Result<Option<Cow<'_, str>>, RowProblem> {
        let idx = match column {
            Column::Index(i) => *i,
            Column::Name(n) => match self.names.get(n) {
                Some(i) => *i,
                None => return Ok(None),
            },
        };
        Ok(self.fields.get(idx).map(|s| Cow::Borrowed(*s)))
    }
}

impl Record for serde_json::Map<String, serde_json::Value> {
    fn get(&self, column: &Column) -> std::result::Result<Option<Cow<'_, str>>, RowProblem> {
        use serde_json::Value;
        let key = match column {
            Column::Name(n) => n.as_str(),
            Column::Index(_) => {
                return Err(RowProblem::WrongType {
                    expected: "named field",
                    found: "column index",
                });
            }
        };
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s))),
            Some(Value::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
            Some(Value::Bool(b)) => Ok(Some(Cow::Owned(b.to_string()))),
            Some(Value::Array(_)) => Err(RowProblem::WrongType {
                expected: "string or number",
                found: "array",
            }),
            Some(Value::Object(_)) => Err(RowProblem::WrongType {
                expected: "string or number",
                found: "object",
            }),
        }
    }
}

enum Built {
    Example(Example),
    SkipLabel,
    NotSelected,
}

struct Sink<'a> {
    path: &'a Path,
    layout: &'a Layout,
    target: &'a Target,
    opts: LoadOptions,
    out: FileContents,
    seen_ids: HashMap<String, u64>,
}

impl Sink<'_> {
    /// Report a malformed row: an error, or a counted skip under `skip_malformed`.
    fn bad_row(&mut self, line: u64, field: Option<&str>, problem: RowProblem) -> Result<()> {
        let err = DataError::row(self.path, line, field, problem);
        if self.opts.skip_malformed {
            let DataError::Row { location, problem } = err else {
                unreachable!()
            };
            self.out
                .skipped_malformed
                .push(SkippedRow { location, problem });
            Ok(())
        } else {
            Err(err)
        }
    }

    fn record(&mut self, line: u64, rec: &dyn Record) -> Result<()> {
        match self.build(rec) {
            Ok(Built::Example(ex)) => {
                if let Some(first_line) = self.seen_ids.insert(ex.id.clone(), line) {
                    let field = self.layout.id.as_ref().map(|c| c.to_string());
                    return self.bad_row(
                        line,
                        field.as_deref(),
                        RowProblem::DuplicateId {
                            id: ex.id,
                            first_line,
                        },
                    );
                }
                self.out.examples.push(ex);
                Ok(())
            }
            Ok(Built::SkipLabel) => {
                self.out.skipped_unlabelled += 1;
                Ok(())
            }
            Ok(Built::NotSelected) => Ok(()),
            Err((field, problem)) => self.bad_row(line, Some(&field), problem),
        }
    }

    fn build(&self, rec: &dyn Record) -> std::result::Result<Built, (String, RowProblem)> {
        let layout = self.layout;
        if let Some(select) = &layout.select {
            let value = rec
                .get(&select.column)
                .map_err(|p| (select.column.to_string(), p))?;
            let value =
                value.ok_or_else(|| (select.column.to_string(), RowProblem::MissingField))?;
            if !select.values.iter().any(|v| v == value.trim()) {
                return Ok(Built::NotSelected);
            }
        }
        let get = |col: &Column| -> std::result::Result<Option<String>, (String, RowProblem)> {
            rec.get(col)
                .map(|v| v.map(Cow::into_owned))
                .map_err(|p| (col.to_string(), p))
        };
        let required = |col: &Column| -> std::result::Result<String, (String, RowProblem)> {
            get(col)?.ok_or_else(|| (col.to_string(), RowProblem::MissingField))
        };
        let label = match &layout.label {
            None => None,
            Some(col) => {
                let raw = required(col)?;
                let raw = raw.trim();
                if layout.skip_labels.iter().any(|s| s == raw) {
                    return Ok(Built::SkipLabel);
                }
                Some(parse_label(raw, layout, self.target).map_err(|p| (col.to_string(), p))?)
            }
        };
        let text_a = required(&layout.text_a)?;
        let text_b = match &layout.text_b {
            Some(col) => Some(required(col)?),
            None => None,
        };
        let id = match &layout.id {
            Some(col) => {
                let id = required(col)?;
                if id.trim().is_empty() {
                    return Err((col.to_string(), RowProblem::EmptyField));
                }
                id
            }
            None => self.out.examples.len().to_string(),
        };
        Ok(Built::Example(Example {
            id,
            text_a,
            text_b,
            label,
        }))
    }
}

fn parse_label(
    raw: &str,
    layout: &Layout,
    target: &Target,
) -> std::result::Result<Label, RowProblem> {
    match target {
        Target::Regression => {
            let v: f64 = raw.parse().map_err(|_| RowProblem::BadScore {
                value: raw.to_owned(),
            })?;
            if !v.is_finite() {
                return Err(RowProblem::NonFiniteScore { value: v });
            }
            Ok(Label::Score(v))
        }
        Target::Classification { labels } => {
            let name = layout.label_map.get(raw).map(String::as_str).unwrap_or(raw);
            labels
                .iter()
                .position(|l| l == name)
                .map(Label::Class)
                .ok_or_else(|| {
                    let mut allowed: Vec<String> = if layout.label_map.is_empty() {
                        labels.clone()
                    } else {
                        layout.label_map.keys().cloned().collect()
                    };
                    allowed.extend(layout.skip_labels.iter().cloned());
                    RowProblem::UnknownLabel {
                        value: raw.to_owned(),
                        allowed,
                    }
                })
        }
    }
}

/// Lines of a text file with 1-based numbers, `\r\n` handled, trailing empty lines dropped.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut end = bytes.len();
    while end > 0 && (bytes[end - 1] == b'\n' || bytes[end - 1] == b'\r') {
        end -= 1;
    }
    let body = &bytes[..end];
    let empty = body.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line.strip_suffix(b"\r").unwrap_or(line)))
}

fn strip_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

fn header_names(path: &Path, layout: &Layout, header: &[&str]) -> Result<HashMap<String, usize>> {
    let names: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, n)| (n.trim().to_owned(), i))
        .collect();
    let wanted = [
        Some(&layout.text_a),
        layout.text_b.as_ref(),
        layout.label.as_ref(),
        layout.id.as_ref(),
        layout.select.as_ref().map(|s| &s.column),
    ];
    for col in wanted.into_iter().flatten() {
        if let Column::Name(n) = col
            && !names.contains_key(n)
        {
            return Err(DataError::MissingColumn {
                path: path.to_owned(),
                column: n.clone(),
                header: header.iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    Ok(names)
}

fn read_tsv(bytes: &[u8], sink: &mut Sink<'_>) -> Result<()> {
    let layout = sink.layout;
    let mut it = lines(bytes);
    let mut names = HashMap::new();
    let mut expected = layout.columns;
    if layout.header {
        let Some((line_no, first)) = it.next() else {
            return Err(DataError::EmptyFile {
                path: sink.path.to_owned(),
            });
        };
        let first = std::str::from_utf8(first)
            .map_err(|_| DataError::row(sink.path, line_no, None, RowProblem::InvalidUtf8))?;
        let header: Vec<&str> = strip_bom(first).split('\t').collect();
        names = header_names(sink.path, layout, &header)?;
        expected = Some(header.len());
    }
    let mut fields: Vec<&str> = Vec::new();
    for (line_no, raw) in it {
        let Ok(text) = std::str::from_utf8(raw) else {
            sink.bad_row(line_no, None, RowProblem::InvalidUtf8)?;
            continue;
        };
        let text = if line_no == 1 { strip_bom(text) } else { text };
        fields.clear();
        fields.extend(text.split('\t'));
        if let Some(n) = expected
            && fields.len() != n
        {
            sink.bad_row(
                line_no,
                None,
                RowProblem::ColumnCount {
                    expected: n,
                    found: fields.len(),
                },
            )?;
            continue;
        }
        let row = Row {
            fields: &fields,
            names: &names,
        };
        sink.record(line_no, &row)?;
    }
    Ok(())
}

fn read_csv(bytes: &[u8], sink: &mut Sink<'_>) -> Result<()> {
    let layout = sink.layout;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut names = HashMap::new();
    let mut expected = layout.columns;
    let mut first = true;
    for rec in reader.byte_records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(DataError::row(
                    sink.path,
                    line,
                    None,
                    RowProblem::Json {
                        message: e.to_string(),
                    },
                ));
            }
        };
        let line_no = rec.position().map(|p| p.line()).unwrap_or(0);
        let mut fields: Vec<&str> = Vec::with_capacity(rec.len());
        let mut bad_utf8 = None;
        for (i, f) in rec.iter().enumerate() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(if i == 0 && line_no == 1 {
                    strip_bom(s)
                } else {
                    s
                }),
                Err(_) => {
                    bad_utf8 = Some(i);
                    break;
                }
            }
        }
        if first && layout.header {
            first = false;
            if bad_utf8.is_some() {
                return Err(DataError::row(
                    sink.path,
                    line_no,
                    None,
                    RowProblem::InvalidUtf8,
                ));
            }
            names = header_names(sink.path, layout, &fields)?;
            expected = Some(fields.len());
            continue;
        }
        first = false;
        if let Some(i) = bad_utf8 {
            sink.bad_row(
                line_no,
                Some(&format!("column {i}")),
                RowProblem::InvalidUtf8,
            )?;
            continue;
        }
        if let Some(n) = expected
            && fields.len() != n
        {
            sink.bad_row(
                line_no,
                None,
                RowProblem::ColumnCount {
                    expected: n,
                    found: fields.len(),
                },
            )?;
            continue;
        }
        sink.record(
            line_no,
            &Row {
                fields: &fields,
                names: &names,
            },
        )?;
    }
    if first && layout.header {
        return Err(DataError::EmptyFile {
            path: sink.path.to_owned(),
        });
    }
    Ok(())
}

fn read_jsonl(bytes: &[u8], sink: &mut Sink<'_>) -> Result<()> {
    for (line_no, raw) in lines(bytes) {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if std::str::from_utf8(raw).is_err() {
            sink.bad_row(line_no, None, RowProblem::InvalidUtf8)?;
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Object(map)) => sink.record(line_no, &map)?,
            Ok(other) => sink.bad_row(
                line_no,
                None,
                RowProblem::WrongType {
                    expected: "JSON object",
                    found: json_kind(&other),
                },
            )?,
            Err(e) => sink.bad_row(
                line_no,
                None,
                RowProblem::Json {
                    message: e.to_string(),
                },
            )?,
        }
    }
    Ok(())
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn read_json(bytes: &[u8], sink: &mut Sink<'_>) -> Result<()> {
    let path = sink.path;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        DataError::row(path, line, None, RowProblem::InvalidUtf8)
    })?;
    let value: serde_json::Value = serde_json::from_str(strip_bom(text)).map_err(|e| {
        DataError::row(
            path,
            e.line() as u64,
            None,
            RowProblem::Json {
                message: e.to_string(),
            },
        )
    })?;
    let starts = entry_lines(strip_bom(text));
    let records: Vec<(Option<String>, serde_json::Value)> = match value {
        serde_json::Value::Object(map) => map.into_iter().map(|(k, v)| (Some(k), v)).collect(),
        serde_json::Value::Array(items) => items.into_iter().map(|v| (None, v)).collect(),
        other => {
            return Err(DataError::row(
                path,
                1,
                None,
                RowProblem::WrongType {
                    expected: "JSON object or array of records",
                    found: json_kind(&other),
                },
            ));
        }
    };
    for (i, (key, value)) in records.into_iter().enumerate() {
        let line = starts.get(i).copied().unwrap_or(1);
        match value {
            serde_json::Value::Object(map) => sink.record(line, &map)?,
            other => sink.bad_row(
                line,
                key.as_deref(),
                RowProblem::WrongType {
                    expected: "JSON object",
                    found: json_kind(&other),
                },
            )?,
        }
    }
    Ok(())
}

/// 1-based line of each top-level entry (object key or array element) of a JSON document, in
/// order. The document must already have parsed.
fn entry_lines(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut line = 1u64;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expect_entry = false;
    for b in text.bytes() {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if expect_entry && depth == 1 && b != b'}' && b != b']' {
            out.push(line);
        }
        expect_entry = false;
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expect_entry = true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_entry = true,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_lines_track_top_level_records() {
        let text = "{\n \"0\": {\"a\": \"x,{\\\"\"},\n \"1\": {\"a\": [1, 2]}\n}";
        assert_eq!(entry_lines(text), vec![2, 3]);
        assert_eq!(entry_lines("[\n{},\n\n{}]"), vec![2, 4]);
    }

    #[test]
    fn lines_handle_crlf_and_trailing_newlines() {
        let got: Vec<_> = lines(b"a\r\nb\n\n").collect();
        assert_eq!(got, vec![(1, &b"a"[..]), (2, &b"b"[..])]);
        assert_eq!(lines(b"").count(), 0);
    }
}
