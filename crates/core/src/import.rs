//! Reading contact files: delimiter and BOM detection, column mapping, per-row validation and
//! in-file dedupe. Pure: the caller hands in a `Read` and decides where contacts go.
//!
//! Limits: a row may have at most [`MAX_FIELDS`] fields and [`MAX_ROW_BYTES`] bytes; the
//! in-file dedupe keeps one `u64` per phone and one `u128` per external id seen (two
//! independently keyed 64-bit SipHashes: a false duplicate needs a 128-bit collision).

use crate::error::FieldError;
use crate::phone::{CountryCode, PhoneNumber};
use crate::record::{Contact, CustomColumn, PhoneType, RecordType};
use crate::time::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use utoipa::ToSchema;

/// A raw CSV record, as [`RecordReader`] reads it and [`RowParser`] parses it.
pub use csv::ByteRecord;

pub const MAX_FIELDS: usize = 500;
pub const MAX_ROW_BYTES: usize = 1 << 20;

string_enum! {
    /// What to do with a row whose external id or phone number is already in the list (or
    /// earlier in the same file).
    pub enum DedupePolicy {
        /// Leave the existing record as it is; count the row as a duplicate.
        Skip = "skip",
        /// Update the existing customer with the row's values (attempt history is kept).
        Update = "update",
        /// Import the row as a new customer anyway.
        KeepBoth = "keep_both",
    }
}

/// One column holding a phone of the customer's chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneColumn {
    pub column: String,
    #[serde(rename = "type")]
    pub phone_type: PhoneType,
}

/// Which file column feeds which record field. Saved with the list after a successful import.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// The customer's numbers in chain order (first, second, third phone ...), at most 10.
    pub phones: Vec<PhoneColumn>,
    /// Columns joined with a space to form the name (e.g. first and last name).
    #[serde(default)]
    pub name: Vec<String>,
    pub external_id: Option<String>,
    pub time_zone: Option<String>,
    pub postal_code: Option<String>,
    pub sort_value: Option<String>,
    /// File column -> list custom column of the same name (typed by the list).
    #[serde(default)]
    pub custom: Vec<String>,
}

impl ColumnMapping {
    /// A mapping guessed from header names, for a first file without one.
    pub fn guess(headers: &[String], columns: &[CustomColumn]) -> ColumnMapping {
        let norm = |h: &str| h.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        let mut m = ColumnMapping::default();
        for h in headers {
            let n = norm(h);
            let phone_type = match n.as_str() {
                "phone" | "phone1" | "phone_1" | "number" | "phone_number" | "telephone" | "home_phone" | "home" => Some(PhoneType::Home),
                "work_phone" | "work" | "business_phone" | "phone2" | "phone_2" => Some(PhoneType::Work),
                "mobile" | "mobile_phone" | "cell" | "cell_phone" | "phone3" | "phone_3" => Some(PhoneType::Mobile),
                _ => None,
            };
            if let Some(phone_type) = phone_type {
                m.phones.push(PhoneColumn { column: h.clone(), phone_type });
                continue;
            }
            match n.as_str() {
                "name" | "full_name" | "first_name" | "firstname" | "last_name" | "lastname" => m.name.push(h.clone()),
                "external_id" | "id" | "member_id" | "crm_id" | "customer_id" => m.external_id = Some(h.clone()),
                "time_zone" | "timezone" | "tz" => m.time_zone = Some(h.clone()),
                "postal_code" | "zip" | "zip_code" | "zipcode" | "postcode" => m.postal_code = Some(h.clone()),
                "sort_value" | "sort" | "priority" => m.sort_value = Some(h.clone()),
                _ => {
                    if columns.iter().any(|c| c.name == *h) {
                        m.custom.push(h.clone())
                    }
                }
            }
        }
        m
    }
}

/// How to read one file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// The list's saved mapping is used when absent; a guess from the headers when none is saved.
    pub mapping: Option<ColumnMapping>,
    /// `,`, `;` or `\t`; detected from the header line when absent.
    pub delimiter: Option<char>,
    /// Region for numbers written without `+`; the list's default when absent.
    pub default_country: Option<CountryCode>,
    #[serde(default = "default_dedupe")]
    pub dedupe: DedupePolicy,
}

fn default_dedupe() -> DedupePolicy {
    DedupePolicy::Skip
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { mapping: None, delimiter: None, default_country: None, dedupe: DedupePolicy::Skip }
    }
}

/// A row that could not be imported, and why. Downloadable as CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// The row's number counting the header as row 1 and not counting blank lines: the row a
    /// spreadsheet shows (a quoted field with line breaks is still one row).
    pub row: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// Problems with the file as a whole: nothing is imported.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty: expected a header row")]
    Empty,
    #[error("the file looks binary (it has NUL bytes), not CSV text")]
    Binary,
    #[error("the header row is not UTF-8 text")]
    HeaderNotUtf8,
    #[error("the header row has an empty column name at position {0}")]
    EmptyHeader(usize),
    #[error("the header row names '{0}' twice")]
    DuplicateHeader(String),
    #[error("the mapping names column '{column}' but the file has none (columns: {available})")]
    MissingColumn { column: String, available: String },
    #[error("the mapping names no phone column; map at least one column to a phone")]
    NoPhoneColumn,
    #[error("custom column '{0}' is mapped but the list has no such column")]
    UnknownCustomColumn(String),
    #[error("delimiter '{0}' is not one of comma, semicolon, tab")]
    BadDelimiter(char),
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is not readable CSV at row {line}: {reason}")]
    Csv { line: u64, reason: String },
}

/// What one row became.
#[derive(Debug)]
pub enum RowOutcome {
    Contact {
        row: u64,
        contact: Contact,
    },
    /// Already seen earlier in this file (by external id or number); skipped.
    DuplicateInFile {
        row: u64,
    },
    Rejected {
        row: u64,
        errors: Vec<RowError>,
        raw: Vec<String>,
    },
}

fn sniff_delimiter(first_line: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut in_quotes = false;
    for &b in first_line {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            for c in counts.iter_mut() {
                if c.0 == b {
                    c.1 += 1;
                }
            }
        }
    }
    counts.iter().max_by_key(|c| c.1).filter(|c| c.1 > 0).map(|c| c.0).unwrap_or(b',')
}

struct Resolved {
    phones: Vec<(usize, PhoneType, String)>,
    name: Vec<usize>,
    external_id: Option<usize>,
    time_zone: Option<usize>,
    postal_code: Option<usize>,
    sort_value: Option<usize>,
    custom: Vec<(usize, CustomColumn)>,
}

/// What one row is before the in-file dedupe: a contact, or the reasons it was refused.
#[derive(Debug)]
pub enum ParsedRow {
    Contact(Contact),
    Rejected { errors: Vec<RowError>, raw: Vec<String> },
}

/// Turns one CSV record into a contact: phone parsing and every other check that needs no
/// earlier row. Immutable and `Sync`, so several threads may parse rows of one file at once
/// (see [`ContactReader::into_parallel`]).
pub struct RowParser {
    headers: Vec<String>,
    map: Resolved,
    mapping: ColumnMapping,
    default_country: Option<CountryCode>,
}

/// The in-file dedupe: the only state one row passes to the next. Rows must be settled in file
/// order (the first of two duplicates is kept).
pub struct InFileDedupe {
    /// Phone dedupe inside the file (off for keep_both); external ids are always unique.
    dedupe_phones: bool,
    seen_phones: HashSet<u64>,
    seen_ids: HashSet<u128>,
    id_hashers: (std::collections::hash_map::RandomState, std::collections::hash_map::RandomState),
}

/// The CSV side of a [`ContactReader`]: records in file order, with their spreadsheet row numbers.
pub struct RecordReader<R: Read> {
    csv: csv::Reader<BufReader<R>>,
    rows_read: u64,
}

/// Streams a contact file row by row.
pub struct ContactReader<R: Read> {
    records: RecordReader<R>,
    parser: RowParser,
    dedupe: InFileDedupe,
    delimiter: u8,
    record: csv::ByteRecord,
}

impl<R: Read> ContactReader<R> {
    /// Reads the header and checks the mapping. `saved` is the list's mapping from an earlier file.
    pub fn new(
        input: R,
        opts: &ImportOptions,
        saved: Option<&ColumnMapping>,
        columns: &[CustomColumn],
        list_default_country: Option<CountryCode>,
    ) -> Result<Self, FileError> {
        let mut buf = BufReader::with_capacity(256 * 1024, input);
        let head = buf.fill_buf()?;
        if head.is_empty() {
            return Err(FileError::Empty);
        }
        if head.iter().take(8192).any(|&b| b == 0) {
            return Err(FileError::Binary);
        }
        let bom = head.starts_with(&[0xEF, 0xBB, 0xBF]);
        if bom {
            buf.consume(3);
        }
        let head = buf.fill_buf()?;
        let first_line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
        let delimiter = match opts.delimiter {
            Some(c @ (',' | ';' | '\t')) => c as u8,
            Some(c) => return Err(FileError::BadDelimiter(c)),
            None => sniff_delimiter(&head[..first_line_end]),
        };
        let mut csv = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(buf);
        let header_rec = csv.byte_headers().map_err(|e| FileError::Csv { line: 1, reason: e.to_string() })?.clone();
        if header_rec.is_empty() || (header_rec.len() == 1 && header_rec[0].is_empty()) {
            return Err(FileError::Empty);
        }
        let mut headers = Vec::with_capacity(header_rec.len());
        for (i, h) in header_rec.iter().enumerate() {
            let s = std::str::from_utf8(h).map_err(|_| FileError::HeaderNotUtf8)?.trim().to_string();
            if s.is_empty() {
                return Err(FileError::EmptyHeader(i + 1));
            }
            if headers.contains(&s) {
                return Err(FileError::DuplicateHeader(s));
            }
            headers.push(s);
        }
        let mapping = opts.mapping.clone().or_else(|| saved.cloned()).unwrap_or_else(|| ColumnMapping::guess(&headers, columns));
        let find = |c: &str| -> Result<usize, FileError> {
            headers
                .iter()
                .position(|h| h == c)
                .ok_or_else(|| FileError::MissingColumn { column: c.to_string(), available: headers.join(", ") })
        };
        if mapping.phones.is_empty() {
            return Err(FileError::NoPhoneColumn);
        }
        let mut custom = Vec::new();
        for c in &mapping.custom {
            let col = columns.iter().find(|k| k.name == *c).ok_or_else(|| FileError::UnknownCustomColumn(c.clone()))?;
            custom.push((find(c)?, col.clone()));
        }
        let map = Resolved {
            phones: mapping
                .phones
                .iter()
                .map(|p| Ok((find(&p.column)?, p.phone_type, p.column.clone())))
                .collect::<Result<_, FileError>>()?,
            name: mapping.name.iter().map(|c| find(c)).collect::<Result<_, _>>()?,
            external_id: mapping.external_id.as_deref().map(find).transpose()?,
            time_zone: mapping.time_zone.as_deref().map(find).transpose()?,
            postal_code: mapping.postal_code.as_deref().map(find).transpose()?,
            sort_value: mapping.sort_value.as_deref().map(find).transpose()?,
            custom,
        };
        Ok(ContactReader {
            records: RecordReader { csv, rows_read: 0 },
            parser: RowParser { headers, map, mapping, default_country: opts.default_country.or(list_default_country) },
            dedupe: InFileDedupe {
                dedupe_phones: opts.dedupe != DedupePolicy::KeepBoth,
                seen_phones: HashSet::new(),
                seen_ids: HashSet::new(),
                id_hashers: (Default::default(), Default::default()),
            },
            delimiter,
            record: csv::ByteRecord::new(),
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.parser.headers
    }
    /// The mapping in force (to be saved with the list).
    pub fn mapping(&self) -> &ColumnMapping {
        &self.parser.mapping
    }
    pub fn delimiter(&self) -> char {
        self.delimiter as char
    }
    /// Bytes consumed so far (for progress against the file size).
    pub fn bytes_read(&self) -> u64 {
        self.records.bytes_read()
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Option<Result<RowOutcome, FileError>> {
        match self.records.next_into(&mut self.record) {
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(row)) => {
                let parsed = self.parser.parse(row, &self.record);
                Some(Ok(self.dedupe.settle(row, parsed)))
            }
        }
    }

    /// The three stages of reading, for a caller that parses rows on several threads: records
    /// in file order, the row parser (shareable), and the in-file dedupe, which must see the
    /// parsed rows in file order. `next_row` is exactly `dedupe.settle(row, parser.parse(row, record))`.
    pub fn into_parallel(self) -> (RecordReader<R>, RowParser, InFileDedupe) {
        (self.records, self.parser, self.dedupe)
    }
}

impl<R: Read> RecordReader<R> {
    /// Reads the next record into `record`; returns its row number (the header is row 1).
    pub fn next_into(&mut self, record: &mut csv::ByteRecord) -> Option<Result<u64, FileError>> {
        match self.csv.read_byte_record(record) {
            Ok(false) => None,
            Ok(true) => {
                self.rows_read += 1;
                Some(Ok(self.rows_read + 1))
            }
            Err(e) => Some(Err(FileError::Csv { line: self.rows_read + 2, reason: e.to_string() })),
        }
    }

    /// Bytes consumed so far (for progress against the file size).
    pub fn bytes_read(&self) -> u64 {
        self.csv.position().byte()
    }
}

fn raw(rec: &csv::ByteRecord) -> Vec<String> {
    rec.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()
}

impl RowParser {
    /// Parses and validates one record (`row` is its spreadsheet row number, for errors).
    pub fn parse(&self, row: u64, rec: &csv::ByteRecord) -> ParsedRow {
        let mut errors = Vec::new();
        let err = |errors: &mut Vec<RowError>, column: &str, value: &str, reason: String| {
            errors.push(RowError { row, column: column.to_string(), value: value.to_string(), reason })
        };
        if rec.len() > self.headers.len() {
            let extra: Vec<String> = rec.iter().skip(self.headers.len()).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            err(&mut errors, "(row)", &extra.join(","), format!("has {} fields but the header has {}", rec.len(), self.headers.len()));
            return ParsedRow::Rejected { errors, raw: raw(rec) };
        }
        if rec.len() > MAX_FIELDS || rec.as_slice().len() > MAX_ROW_BYTES {
            err(&mut errors, "(row)", "", format!("is larger than {MAX_FIELDS} fields or {MAX_ROW_BYTES} bytes"));
            return ParsedRow::Rejected { errors, raw: raw(rec) };
        }
        let headers = &self.headers;
        let cell = |errors: &mut Vec<RowError>, i: usize| -> Option<&str> {
            match rec.get(i) {
                None => None,
                Some(b) => match std::str::from_utf8(b) {
                    Ok(s) => Some(s.trim()).filter(|s| !s.is_empty()),
                    Err(_) => {
                        errors.push(RowError {
                            row,
                            column: headers[i].clone(),
                            value: String::from_utf8_lossy(b).into_owned(),
                            reason: "is not UTF-8 text".into(),
                        });
                        None
                    }
                },
            }
        };
        let mut phones = Vec::with_capacity(self.map.phones.len());
        for (i, t, col) in &self.map.phones {
            if let Some(v) = cell(&mut errors, *i) {
                match PhoneNumber::parse(v, self.default_country) {
                    Ok(n) => {
                        if phones.iter().any(|(_, p)| *p == n) {
                            err(&mut errors, col, v, format!("{n} is already an earlier phone of this row"));
                        } else {
                            phones.push((*t, n))
                        }
                    }
                    Err(e) => err(&mut errors, col, v, e.reason),
                }
            }
        }
        if phones.is_empty() && errors.is_empty() {
            let cols: Vec<&str> = self.map.phones.iter().map(|p| p.2.as_str()).collect();
            err(&mut errors, &cols.join("|"), "", "has no phone number".into());
        }
        let mut name = String::new();
        for &i in &self.map.name {
            if let Some(v) = cell(&mut errors, i) {
                if !name.is_empty() {
                    name.push(' ');
                }
                name.push_str(v);
            }
        }
        let external_id = match self.map.external_id.and_then(|i| cell(&mut errors, i)) {
            None => None,
            Some(v) => match crate::record::parse_external_id(v) {
                Ok(id) => Some(id),
                Err(e) => {
                    err(&mut errors, self.mapping.external_id.as_deref().unwrap_or_default(), v, e.reason);
                    None
                }
            },
        };
        let time_zone = match self.map.time_zone.and_then(|i| cell(&mut errors, i)) {
            None => None,
            Some(v) => match TimeZone::parse(v) {
                Ok(z) => Some(z),
                Err(e) => {
                    err(&mut errors, self.mapping.time_zone.as_deref().unwrap_or_default(), v, e.reason);
                    None
                }
            },
        };
        let postal_code = match self.map.postal_code.and_then(|i| cell(&mut errors, i)) {
            None => None,
            Some(v) => match crate::record::ColumnKind::PostalCode.parse_value(v, None) {
                Ok(serde_json::Value::String(s)) => Some(s),
                Ok(_) => None,
                Err(r) => {
                    err(&mut errors, self.mapping.postal_code.as_deref().unwrap_or_default(), v, r);
                    None
                }
            },
        };
        let sort_value = self.map.sort_value.and_then(|i| cell(&mut errors, i)).map(str::to_string);
        let mut custom = serde_json::Map::new();
        for (i, col) in &self.map.custom {
            if let Some(v) = cell(&mut errors, *i) {
                match col.kind.parse_value(v, self.default_country) {
                    Ok(val) => {
                        custom.insert(col.name.clone(), val);
                    }
                    Err(r) => err(&mut errors, &col.name, v, r),
                }
            }
        }
        if !errors.is_empty() {
            return ParsedRow::Rejected { errors, raw: raw(rec) };
        }
        ParsedRow::Contact(Contact {
            external_id,
            name,
            phones,
            time_zone,
            postal_code,
            sort_value,
            dial_from: None,
            dial_until: None,
            record_type: RecordType::General,
            custom,
        })
    }
}

impl InFileDedupe {
    /// What a parsed row becomes, given the rows settled before it.
    pub fn settle(&mut self, row: u64, parsed: ParsedRow) -> RowOutcome {
        let contact = match parsed {
            ParsedRow::Rejected { errors, raw } => return RowOutcome::Rejected { row, errors, raw },
            ParsedRow::Contact(c) => c,
        };
        // An external id names one customer: a second row with it is always a duplicate.
        let id_key = contact.external_id.as_ref().map(|id| {
            use std::hash::BuildHasher;
            (u128::from(self.id_hashers.0.hash_one(id)) << 64) | u128::from(self.id_hashers.1.hash_one(id))
        });
        let dup_id = id_key.is_some_and(|k| self.seen_ids.contains(&k));
        let dup_phone = self.dedupe_phones && contact.phones.iter().any(|(_, p)| self.seen_phones.contains(&p.as_u64()));
        if dup_id || dup_phone {
            return RowOutcome::DuplicateInFile { row };
        }
        if let Some(k) = id_key {
            self.seen_ids.insert(k);
        }
        if self.dedupe_phones {
            for (_, p) in &contact.phones {
                self.seen_phones.insert(p.as_u64());
            }
        }
        RowOutcome::Contact { row, contact }
    }
}

/// Writes rejected rows as CSV: the error columns first, then the row as it was in the file,
/// so the file can be fixed and imported again.
pub fn write_error_csv<W: std::io::Write>(out: W, errors: &[RowError]) -> Result<(), csv::Error> {
    let mut w = crate::csv_out::CsvOut::new(out);
    w.row(["row", "column", "value", "reason"])?;
    for e in errors {
        w.row([e.row.to_string().as_str(), &e.column, &e.value, &e.reason])?;
    }
    w.flush()?;
    Ok(())
}

impl From<FileError> for FieldError {
    fn from(e: FileError) -> Self {
        FieldError::new("file", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], opts: &ImportOptions) -> Result<Vec<RowOutcome>, FileError> {
        let mut r = ContactReader::new(data, opts, None, &[], Some(CountryCode::parse("US").unwrap()))?;
        let mut v = Vec::new();
        while let Some(x) = r.next_row() {
            v.push(x?);
        }
        Ok(v)
    }

    fn counts(rows: &[RowOutcome]) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in rows {
            match r {
                RowOutcome::Contact { .. } => c.0 += 1,
                RowOutcome::DuplicateInFile { .. } => c.1 += 1,
                RowOutcome::Rejected { .. } => c.2 += 1,
            }
        }
        c
    }

    #[test]
    fn bom_crlf_semicolons_quotes_and_national_numbers() {
        let data =
            "\u{feff}id;name;phone;mobile\r\n1;\"Ann\nSmith\";212-555-0143;+1 312 555 0100\r\n\r\n2;\"Bo \"\"B\"\"\";(646) 555-0199;\r\n";
        let rows = read_all(data.as_bytes(), &ImportOptions::default()).unwrap();
        assert_eq!(counts(&rows), (2, 0, 0));
        match &rows[0] {
            RowOutcome::Contact { row, contact } => {
                assert_eq!(*row, 2);
                assert_eq!(contact.name, "Ann\nSmith");
                assert_eq!(contact.external_id.as_deref(), Some("1"));
                assert_eq!(contact.phones.len(), 2, "{contact:?}");
                assert_eq!(contact.phones[1], (PhoneType::Mobile, PhoneNumber::parse("+13125550100", None).unwrap()));
            }
            other => panic!("{other:?}"),
        }
        match &rows[1] {
            RowOutcome::Contact { row, contact } => {
                assert_eq!(*row, 3);
                assert_eq!(contact.name, "Bo \"B\"");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_rows_name_row_column_value() {
        let data = "phone,name,extra\n+12125550143,A,x\nnot-a-number,B,y\n+12125550143,C,z\n1,2,3,4\n";
        let rows = read_all(data.as_bytes(), &ImportOptions::default()).unwrap();
        assert_eq!(counts(&rows), (1, 1, 2));
        match &rows[1] {
            RowOutcome::Rejected { row, errors, .. } => {
                assert_eq!(*row, 3);
                assert_eq!(errors[0].column, "phone");
                assert_eq!(errors[0].value, "not-a-number");
            }
            other => panic!("{other:?}"),
        }
        match &rows[3] {
            RowOutcome::Rejected { errors, .. } => {
                assert!(errors[0].reason.contains("has 4 fields"), "{errors:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn whole_file_errors() {
        assert!(matches!(read_all(b"", &ImportOptions::default()), Err(FileError::Empty)));
        assert!(matches!(read_all(b"\x00\x01\x02binary", &ImportOptions::default()), Err(FileError::Binary)));
        assert!(matches!(read_all(b"name,city\nA,B\n", &ImportOptions::default()), Err(FileError::NoPhoneColumn)));
        let opts = ImportOptions {
            mapping: Some(ColumnMapping {
                phones: vec![PhoneColumn { column: "tel".into(), phone_type: PhoneType::Home }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = read_all(b"phone\n+12125550143\n", &opts).unwrap_err();
        assert_eq!(e.to_string(), "the mapping names column 'tel' but the file has none (columns: phone)");
    }

    #[test]
    fn parsing_out_of_order_then_settling_in_order_is_next_row() {
        let data = "id,phone,mobile\n1,+12125550143,\n2,bad,\n3,+12125550143,\n1,+13125550100,\n4,(312) 555-0101,+12125550199\n5,,\n";
        let us = Some(CountryCode::parse("US").unwrap());
        let sequential = read_all(data.as_bytes(), &ImportOptions::default()).unwrap();
        let reader = ContactReader::new(data.as_bytes(), &ImportOptions::default(), None, &[], us).unwrap();
        let (mut records, parser, mut dedupe) = reader.into_parallel();
        let mut recs = Vec::new();
        let mut rec = ByteRecord::new();
        while let Some(row) = records.next_into(&mut rec) {
            recs.push((row.unwrap(), rec.clone()));
        }
        // Parsed last row first (as parallel threads may), settled in file order.
        let mut parsed: Vec<(u64, ParsedRow)> = recs.iter().rev().map(|(row, rec)| (*row, parser.parse(*row, rec))).collect();
        parsed.reverse();
        let split: Vec<RowOutcome> = parsed.into_iter().map(|(row, p)| dedupe.settle(row, p)).collect();
        assert_eq!(format!("{split:?}"), format!("{sequential:?}"));
        assert_eq!(counts(&split), (2, 2, 2));
    }

    #[test]
    fn tab_delimited_and_keep_both() {
        let data = "phone\tname\n+12125550143\tA\n+12125550143\tB\n";
        let rows = read_all(data.as_bytes(), &ImportOptions { dedupe: DedupePolicy::KeepBoth, ..Default::default() }).unwrap();
        assert_eq!(counts(&rows), (2, 0, 0));
    }
}
