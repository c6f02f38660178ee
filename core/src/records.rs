//! Splits CSV text into records with their line numbers: quotes (with `""` escapes and line
//! breaks inside), CRLF, lone CR and LF endings, and a missing final newline.
//!
//! One [`Record`] is reused for every row of a file: fields are byte ranges of the text (or of a
//! scratch buffer for the rare quoted field with `""` escapes), so reading a row allocates nothing.

use std::ops::Range;

/// One CSV record as written, fields unquoted but not trimmed. Reused from row to row.
#[derive(Debug, Default)]
pub struct Record {
    /// 1-based line on which the record starts.
    pub line: usize,
    /// Byte offset in the text where the record starts.
    pub start: usize,
    /// The record ended inside an open quote (end of file reached first).
    pub unterminated_quote: bool,
    /// Each field: a range of the text, or (when `true`) of `scratch`.
    fields: Vec<(bool, Range<usize>)>,
    scratch: String,
}

impl Record {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i` (`text` is the text the record was read from).
    pub fn get<'a>(&'a self, text: &'a str, i: usize) -> &'a str {
        match &self.fields[i] {
            (false, r) => &text[r.clone()],
            (true, r) => &self.scratch[r.clone()],
        }
    }

    pub fn iter<'a>(&'a self, text: &'a str) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        (0..self.fields.len()).map(move |i| self.get(text, i))
    }

    /// A blank line: one empty or space-only field.
    pub fn is_blank(&self, text: &str) -> bool {
        self.fields.len() == 1 && self.get(text, 0).trim().is_empty()
    }
}

/// Reads the records of `text` one at a time into a reused [`Record`].
pub struct Records<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

pub fn records(text: &str) -> Records<'_> {
    Records { text, pos: 0, line: 1 }
}

impl<'a> Records<'a> {
    /// Reads the next record that is not blank into `rec`; `false` at the end of the text.
    pub fn read_filled(&mut self, rec: &mut Record) -> bool {
        while self.read(rec) {
            if !rec.is_blank(self.text) {
                return true;
            }
        }
        false
    }

    /// Reads the next record into `rec`; `false` at the end of the text.
    pub fn read(&mut self, rec: &mut Record) -> bool {
        let b = self.text.as_bytes();
        if self.pos >= b.len() {
            return false;
        }
        rec.line = self.line;
        rec.start = self.pos;
        rec.unterminated_quote = false;
        rec.fields.clear();
        rec.scratch.clear();
        let mut i = self.pos;
        let mut field_start = i;
        // A field with quotes is copied, unquoted, into the scratch buffer from its first quote on.
        let mut quoted: Option<usize> = None;
        let mut in_quotes = false;
        let mut seg_start = i;
        // Only ASCII bytes are delimiters, so slicing at them always falls on a char boundary.
        macro_rules! end_field {
            () => {
                match quoted.take() {
                    None => rec.fields.push((false, field_start..i)),
                    Some(s) => {
                        rec.scratch.push_str(&self.text[seg_start..i]);
                        rec.fields.push((true, s..rec.scratch.len()));
                    }
                }
            };
        }
        while i < b.len() {
            let c = b[i];
            if in_quotes {
                match c {
                    b'"' if b.get(i + 1) == Some(&b'"') => {
                        rec.scratch.push_str(&self.text[seg_start..=i]);
                        i += 2;
                        seg_start = i;
                        continue;
                    }
                    b'"' => {
                        rec.scratch.push_str(&self.text[seg_start..i]);
                        in_quotes = false;
                        i += 1;
                        seg_start = i;
                        continue;
                    }
                    b'\n' => self.line += 1,
                    b'\r' if b.get(i + 1) != Some(&b'\n') => self.line += 1,
                    _ => {}
                }
                i += 1;
                continue;
            }
            match c {
                b'"' => {
                    if quoted.is_none() {
                        quoted = Some(rec.scratch.len());
                        seg_start = field_start;
                    }
                    rec.scratch.push_str(&self.text[seg_start..i]);
                    in_quotes = true;
                    i += 1;
                    seg_start = i;
                }
                b',' => {
                    end_field!();
                    i += 1;
                    field_start = i;
                    seg_start = i;
                }
                b'\r' | b'\n' => {
                    end_field!();
                    i += if c == b'\r' && b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                    self.line += 1;
                    self.pos = i;
                    return true;
                }
                _ => i += 1,
            }
        }
        end_field!();
        rec.unterminated_quote = in_quotes;
        self.pos = b.len();
        true
    }

    /// Every record as owned strings (small files: `teams.csv`, tests).
    pub fn collect_owned(mut self) -> Vec<(usize, Vec<String>)> {
        let mut rec = Record::default();
        let mut out = Vec::new();
        while self.read(&mut rec) {
            out.push((rec.line, rec.iter(self.text).map(str::to_string).collect()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(usize, Vec<String>)> {
        records(text).collect_owned()
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_newlines() {
        let got = all("a,\"b, c\",\"say \"\"hi\"\"\"\n\"x\ny\",2\n");
        assert_eq!(got[0], (1, vec!["a".into(), "b, c".into(), "say \"hi\"".into()]));
        assert_eq!(got[1], (2, vec!["x\ny".into(), "2".into()]));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn quotes_inside_a_field_join_the_parts_around_them() {
        let got = all("ab\"c,d\"e,f\n");
        assert_eq!(got[0].1, vec!["abc,de".to_string(), "f".to_string()]);
    }

    #[test]
    fn crlf_lone_cr_and_missing_final_newline_count_lines() {
        let got = all("h1,h2\r\n1,2\r3,4\n\n5,6");
        let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5]);
        assert_eq!(got[4].1, vec!["5".to_string(), "6".to_string()]);
        let mut rec = Record::default();
        let mut r = records("\n");
        assert!(r.read(&mut rec) && rec.is_blank("\n"));
    }

    #[test]
    fn an_open_quote_at_end_of_file_is_flagged() {
        let text = "a,\"b\n";
        let mut r = records(text);
        let mut rec = Record::default();
        assert!(r.read(&mut rec));
        assert!(rec.unterminated_quote);
        assert!(!r.read(&mut rec));
    }

    #[test]
    fn a_reused_record_holds_only_the_current_row() {
        let text = "\"q\"\"x\",1,2\nplain,3\n";
        let mut r = records(text);
        let mut rec = Record::default();
        assert!(r.read(&mut rec));
        assert_eq!(rec.iter(text).collect::<Vec<_>>(), ["q\"x", "1", "2"]);
        assert!(r.read(&mut rec));
        assert_eq!((rec.line, rec.start), (2, 11));
        assert_eq!(rec.iter(text).collect::<Vec<_>>(), ["plain", "3"]);
    }
}
