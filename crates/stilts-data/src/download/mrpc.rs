//! GLUE's MRPC, built from the SentEval copies of the Microsoft Research Paraphrase Corpus as
//! `download_glue_data.py` builds it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use super::sources::{MRPC_DEV_IDS_FILE, MRPC_TEST_FILE, MRPC_TRAIN_FILE};
use crate::error::{DataError, Result, RowProblem};

/// Python's `str.isspace`, which `str.strip()` trims: Unicode White_Space plus the separators
/// U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// A text file as Python reads it in text mode: UTF-8, `\r\n` and `\r` turned into `\n`.
fn read_text_universal(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            DataError::MissingFile {
                path: path.to_owned(),
                hint: Some(
                    "MRPC needs msr_paraphrase_train.txt, msr_paraphrase_test.txt and dev_ids.tsv"
                        .into(),
                ),
            }
        } else {
            DataError::io(path, e)
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        DataError::row(path, line, None, RowProblem::InvalidUtf8)
    })?;
    if text.contains('\r') {
        Ok(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Ok(text)
    }
}

/// The five fields of an MRPC row (`Quality`, `#1 ID`, `#2 ID`, `#1 String`, `#2 String`), or
/// `None` for a blank line.
fn mrpc_fields<'a>(path: &Path, line_no: u64, line: &'a str) -> Result<Option<[&'a str; 5]>> {
    let line = py_strip(line);
    if line.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    <[&str; 5]>::try_from(fields.as_slice())
        .map(Some)
        .map_err(|_| {
            DataError::row(
                path,
                line_no,
                None,
                RowProblem::ColumnCount {
                    expected: 5,
                    found: fields.len(),
                },
            )
        })
}

/// Build `train.tsv`, `dev.tsv` and `test.tsv` of GLUE MRPC in `out_dir` from the raw files in
/// `raw_dir` ([`MRPC_TRAIN_FILE`], [`MRPC_TEST_FILE`], [`MRPC_DEV_IDS_FILE`]), byte for byte as
/// `format_mrpc` of `download_glue_data.py` does: the training file's header line (with its
/// UTF-8 BOM) heads train and dev; a row goes to dev when its `(#1 ID, #2 ID)` pair is in the dev
/// id list; test gets the header `index\t#1 ID\t#2 ID\t#1 String\t#2 String` and its rows lose the
/// label and gain a 0-based index. Rows are whitespace-stripped as Python's `str.strip` does and
/// every line ends in `\n`. Blank lines are skipped; a row without exactly five fields is an
/// error naming its line. `raw_dir` and `out_dir` may be the same.
pub fn format_mrpc(raw_dir: &Path, out_dir: &Path) -> Result<()> {
    let ids_path = raw_dir.join(MRPC_DEV_IDS_FILE);
    let train_path = raw_dir.join(MRPC_TRAIN_FILE);
    let test_path = raw_dir.join(MRPC_TEST_FILE);
    let ids_text = read_text_universal(&ids_path)?;
    let train_text = read_text_universal(&train_path)?;
    let test_text = read_text_universal(&test_path)?;

    let dev_ids: HashSet<(&str, &str)> = ids_text
        .lines()
        .filter_map(|line| {
            let mut fields = py_strip(line).split('\t');
            match (fields.next(), fields.next(), fields.next()) {
                (Some(a), Some(b), None) => Some((a, b)),
                _ => None,
            }
        })
        .collect();

    let mut lines = train_text.split_inclusive('\n');
    let header = lines.next().ok_or_else(|| DataError::EmptyFile {
        path: train_path.clone(),
    })?;
    let mut train = String::with_capacity(train_text.len());
    let mut dev = String::with_capacity(train_text.len() / 8);
    train.push_str(header);
    dev.push_str(header);
    for (i, line) in lines.enumerate() {
        let Some([label, id1, id2, s1, s2]) = mrpc_fields(&train_path, i as u64 + 2, line)? else {
            continue;
        };
        let out = if dev_ids.contains(&(id1, id2)) {
            &mut dev
        } else {
            &mut train
        };
        for field in [label, "\t", id1, "\t", id2, "\t", s1, "\t", s2, "\n"] {
            out.push_str(field);
        }
    }

    let mut lines = test_text.split_inclusive('\n');
    if lines.next().is_none() {
        return Err(DataError::EmptyFile { path: test_path });
    }
    let mut test = String::with_capacity(test_text.len() + test_text.len() / 16);
    test.push_str("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
    let mut index = 0usize;
    for (i, line) in lines.enumerate() {
        let Some([_label, id1, id2, s1, s2]) = mrpc_fields(&test_path, i as u64 + 2, line)? else {
            continue;
        };
        test.push_str(&format!("{index}\t{id1}\t{id2}\t{s1}\t{s2}\n"));
        index += 1;
    }

    fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    for (name, text) in [
        ("train.tsv", &train),
        ("dev.tsv", &dev),
        ("test.tsv", &test),
    ] {
        stilts_io::fs::write_atomic(&out_dir.join(name), text.as_bytes())
            .map_err(|e| DataError::io(e.path, e.source))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_strip_includes_file_separators() {
        assert_eq!(py_strip("\u{1f} a\u{a0}\t\n"), "a");
    }
}
