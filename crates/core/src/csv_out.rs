//! Every CSV file Campana writes (audit export, import error files, reports) goes through
//! [`CsvOut`], so no cell can be read as a formula by a spreadsheet (CSV injection): a cell
//! starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, which
//! spreadsheets show as text and which a reader of the raw file recognises.

use std::borrow::Cow;

/// The cell as written: a leading `'` when a spreadsheet would take it as a formula.
pub fn neutralise_formula(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// A CSV writer whose every cell goes through [`neutralise_formula`].
pub struct CsvOut<W: std::io::Write>(csv::Writer<W>);

impl<W: std::io::Write> CsvOut<W> {
    pub fn new(out: W) -> Self {
        CsvOut(csv::WriterBuilder::new().has_headers(false).from_writer(out))
    }
    pub fn row<I, S>(&mut self, cells: I) -> Result<(), csv::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.0.write_record(cells.into_iter().map(|c| neutralise_formula(c.as_ref()).into_owned()))
    }
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text() {
        for bad in ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\")"] {
            assert_eq!(neutralise_formula(bad), format!("'{bad}"));
        }
        for ok in ["", "hello", "1", "a=b", "'quoted", " =1"] {
            assert_eq!(neutralise_formula(ok), ok);
        }
        let mut buf = Vec::new();
        let mut w = CsvOut::new(&mut buf);
        w.row(["=cmd|' /C calc'!A0", "x"]).unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(String::from_utf8(buf).unwrap(), "'=cmd|' /C calc'!A0,x\n");
    }
}
