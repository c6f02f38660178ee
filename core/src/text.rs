//! Text from trackers and files as it may be shown, and cells as spreadsheets may read them.

use std::borrow::Cow;

/// Characters that change how the text around them is displayed without being seen: the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks
/// (U+200E, U+200F, U+061C), and invisible spaces and joiners that make two names look alike
/// (U+200B, U+2060–U+2064, U+FEFF, U+00AD, U+180E, U+FFF9–U+FFFB, U+206A–U+206F, U+034F, the
/// Hangul fillers, the tag characters U+E0000–U+E007F). The zero-width joiner and
/// non-joiner (U+200C, U+200D) stay: scripts such as Persian and emoji sequences need them.
pub fn is_spoofing(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}'
            | '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '\u{180E}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{206A}'..='\u{206F}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Breaks a line as a control character would: shown as a space.
fn breaks_line(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `s` as it may be shown: each control character (and line or paragraph separator) a space,
/// each spoofing character (see
/// [`is_spoofing`]) left out. Borrowed when there is nothing to change (the usual case).
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| breaks_line(c) || is_spoofing(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().filter(|c| !is_spoofing(*c)).map(|c| if breaks_line(c) { ' ' } else { c }).collect())
}

/// A text cell a spreadsheet reads as text: one starting (after spaces) with `=`, `+`, `-`, `@`
/// or their full-width forms, or with a tab or a CR, is a formula to Excel, LibreOffice or
/// Google Sheets, so it gets a leading `'`. A plain decimal number (`-5`, `+1e3`) is left as
/// it is.
pub fn spreadsheet_cell(s: &str) -> Cow<'_, str> {
    let t = s.trim();
    let first = s.trim_start().chars().next();
    let risky = s.starts_with(['\t', '\r']) || first.is_some_and(|c| "=+-@＝＋－＠".contains(c));
    let number = t.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) && t.parse::<f64>().is_ok();
    if risky && !number {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_invisible_characters_are_left_out_and_controls_become_spaces() {
        // "gpu-\u{202E}fdp.exe" displays as "gpu-exe.pdf".
        assert_eq!(shown("gpu-\u{202E}fdp.exe"), "gpu-fdp.exe");
        assert_eq!(shown("\u{2066}a\u{2069}\u{200B}b\u{FEFF}\u{200F}"), "ab");
        assert_eq!(shown("a\tb\u{7}c\u{2028}d"), "a b c d");
        assert_eq!(shown("ad\u{E0041}min\u{3164}"), "admin");
        // Joiners stay (emoji sequences, Persian); plain text is borrowed.
        assert_eq!(shown("👩\u{200D}💻 می\u{200C}خواهم"), "👩\u{200D}💻 می\u{200C}خواهم");
        assert!(matches!(shown("Intel Xeon"), Cow::Borrowed(_)));
    }

    #[test]
    fn formula_cells_get_a_quote_and_numbers_do_not() {
        for f in [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            " =1+1",
            "＝1+1",
            "-inf",
            "+nan",
        ] {
            assert_eq!(spreadsheet_cell(f), format!("'{f}"));
        }
        for n in ["-5", "+1e3", "-0.25", "Intel", "", "a=b"] {
            assert_eq!(spreadsheet_cell(n), n);
        }
    }
}
