//! Splits CSV text into records with their line numbers: quotes (with `""` escapes and line
//! breaks inside), CRLF, lone CR and LF endings, and a missing final newline.

/// One CSV record as written, fields unquoted but not trimmed.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line on which the record starts.
    pub line: usize,
    pub fields: Vec<String>,
    /// The record ended inside an open quote (end of file reached first).
    pub unterminated_quote: bool,
}

impl Record {
    /// A blank line: one empty or space-only field.
    pub fn is_blank(&self) -> bool {
        self.fields.len() == 1 && self.fields[0].trim().is_empty()
    }
}

/// Iterator over the records of `text`.
pub struct Records<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
}

pub fn records(text: &str) -> Records<'_> {
    Records { bytes: text.as_bytes(), text, pos: 0, line: 1 }
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let start_line = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut seg_start = self.pos;
        let b = self.bytes;
        let mut i = self.pos;
        // Copies text[seg_start..i] into the field. Only ASCII bytes are delimiters, so slicing at
        // them always falls on a char boundary.
        macro_rules! flush {
            () => {
                field.push_str(&self.text[seg_start..i]);
            };
        }
        while i < b.len() {
            let c = b[i];
            if in_quotes {
                match c {
                    b'"' if b.get(i + 1) == Some(&b'"') => {
                        flush!();
                        field.push('"');
                        i += 2;
                        seg_start = i;
                        continue;
                    }
                    b'"' => {
                        flush!();
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
                    flush!();
                    in_quotes = true;
                    i += 1;
                    seg_start = i;
                }
                b',' => {
                    flush!();
                    fields.push(std::mem::take(&mut field));
                    i += 1;
                    seg_start = i;
                }
                b'\r' | b'\n' => {
                    flush!();
                    fields.push(field);
                    i += if c == b'\r' && b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                    self.line += 1;
                    self.pos = i;
                    return Some(Record { line: start_line, fields, unterminated_quote: false });
                }
                _ => i += 1,
            }
        }
        flush!();
        fields.push(field);
        self.pos = b.len();
        Some(Record { line: start_line, fields, unterminated_quote: in_quotes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(usize, Vec<String>)> {
        records(text).map(|r| (r.line, r.fields)).collect()
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_newlines() {
        let got = all("a,\"b, c\",\"say \"\"hi\"\"\"\n\"x\ny\",2\n");
        assert_eq!(got[0], (1, vec!["a".into(), "b, c".into(), "say \"hi\"".into()]));
        assert_eq!(got[1], (2, vec!["x\ny".into(), "2".into()]));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn crlf_lone_cr_and_missing_final_newline_count_lines() {
        let got = all("h1,h2\r\n1,2\r3,4\n\n5,6");
        let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5]);
        assert_eq!(got[4].1, vec!["5".to_string(), "6".to_string()]);
        assert!(records("\n").next().is_some_and(|r| r.is_blank()));
    }

    #[test]
    fn an_open_quote_at_end_of_file_is_flagged() {
        let r: Vec<Record> = records("a,\"b\n").collect();
        assert_eq!(r.len(), 1);
        assert!(r[0].unterminated_quote);
    }
}
