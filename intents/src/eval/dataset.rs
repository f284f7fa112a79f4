//! Evaluation data sets: JSON Lines, CSV (BANKING77) and the CLINC150 layout.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bot_core::IntentId;
use serde::Deserialize;

use crate::error::DatasetError;
use crate::rng::SplitMix64;

/// A text with its intent; `None` marks an out-of-scope text that no intent
/// should claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledText {
    pub text: String,
    pub intent: Option<IntentId>,
}

/// Labelled texts, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    pub examples: Vec<LabeledText>,
}

/// The CLINC150 `data_full.json` splits, each with its out-of-scope texts
/// (`oos_train`, `oos_val`, `oos_test`) appended.
#[derive(Clone, Debug)]
pub struct Clinc150 {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
}

/// The problem reported for a row whose text is empty or only spaces: a
/// classifier cannot be scored on it, and counting it would skew accuracy.
const EMPTY_TEXT: &str = "the text is empty; remove the row or give it a text";

/// The intent label that CLINC150 uses for out-of-scope texts.
pub const CLINC_OUT_OF_SCOPE: &str = "oos";

impl Dataset {
    /// Loads a `.jsonl` or `.csv` file, chosen by extension.
    pub fn load(path: &Path) -> Result<Dataset, DatasetError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => Self::from_jsonl(path),
            Some("csv") => Self::from_csv(path),
            _ => Err(DatasetError::UnknownFormat { path: path.to_owned() }),
        }
    }

    /// Loads JSON Lines of `{"text": "...", "intent": "..."}`; an `intent` that is
    /// `null` or missing marks an out-of-scope text. Blank lines are skipped.
    pub fn from_jsonl(path: &Path) -> Result<Dataset, DatasetError> {
        #[derive(Deserialize)]
        struct Line {
            text: String,
            intent: Option<String>,
        }

        let content = read(path)?;
        let mut examples = Vec::new();
        for (index, line) in content.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(line).map_err(|error| {
                // serde_json counts lines within this one line; keep only the column.
                let message = error.to_string().replace(&format!(" at line 1 column {}", error.column()), "");
                invalid(path, index + 1, format!("{message} (column {})", error.column()))
            })?;
            if bot_core::text::is_blank(&parsed.text) {
                return Err(invalid(path, index + 1, EMPTY_TEXT.to_owned()));
            }
            examples.push(LabeledText { text: parsed.text, intent: parsed.intent.map(IntentId::new) });
        }
        Ok(Dataset { examples })
    }

    /// Loads CSV with a header row naming a `text` column and an intent column
    /// (`category`, `intent` or `label`), as BANKING77 ships. Fields may be quoted,
    /// with `""` for a quote and line breaks inside quotes. An empty intent marks
    /// an out-of-scope text.
    pub fn from_csv(path: &Path) -> Result<Dataset, DatasetError> {
        let content = read(path)?;
        let records = parse_csv(&content).map_err(|(line, problem)| invalid(path, line, problem))?;
        let Some((header_line, header)) = records.first() else {
            return Err(invalid(path, 1, "the file is empty; expected a header row".to_owned()));
        };

        let column = |names: &[&str]| header.iter().position(|h| names.contains(&h.trim()));
        let text_column = column(&["text"]).ok_or_else(|| invalid(path, *header_line, "no `text` column in the header".to_owned()))?;
        let intent_column = column(&["category", "intent", "label"])
            .ok_or_else(|| invalid(path, *header_line, "no `category`, `intent` or `label` column in the header".to_owned()))?;

        let mut examples = Vec::new();
        for (line, record) in &records[1..] {
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            if record.len() != header.len() {
                return Err(invalid(path, *line, format!("{} fields, expected {} as in the header", record.len(), header.len())));
            }
            if bot_core::text::is_blank(&record[text_column]) {
                return Err(invalid(path, *line, EMPTY_TEXT.to_owned()));
            }
            let intent = record[intent_column].trim();
            examples.push(LabeledText { text: record[text_column].clone(), intent: (!intent.is_empty()).then(|| IntentId::new(intent)) });
        }
        Ok(Dataset { examples })
    }

    /// Returns the in-scope examples as training pairs.
    pub fn in_scope(&self) -> Vec<(String, IntentId)> {
        self.examples.iter().filter_map(|e| e.intent.clone().map(|intent| (e.text.clone(), intent))).collect()
    }

    /// Returns up to `shots` in-scope examples of each intent, drawn with `seed`,
    /// in file order; out-of-scope examples are left out.
    pub fn sample_per_intent(&self, shots: usize, seed: u64) -> Dataset {
        let mut by_intent: BTreeMap<&IntentId, Vec<usize>> = BTreeMap::new();
        for (index, example) in self.examples.iter().enumerate() {
            if let Some(intent) = &example.intent {
                by_intent.entry(intent).or_default().push(index);
            }
        }
        let mut rng = SplitMix64::new(seed);
        let mut chosen: Vec<usize> = Vec::new();
        for indices in by_intent.values_mut() {
            rng.shuffle(indices);
            chosen.extend(indices.iter().take(shots));
        }
        chosen.sort_unstable();
        Dataset { examples: chosen.into_iter().map(|i| self.examples[i].clone()).collect() }
    }

    /// Number of out-of-scope examples.
    pub fn out_of_scope_count(&self) -> usize {
        self.examples.iter().filter(|e| e.intent.is_none()).count()
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }
}

impl Clinc150 {
    /// Loads CLINC150's JSON layout: an object whose `train`, `val`, `test`,
    /// `oos_train`, `oos_val` and `oos_test` keys hold arrays of `[text, intent]`.
    /// The intent `oos` marks an out-of-scope text.
    pub fn load(path: &Path) -> Result<Clinc150, DatasetError> {
        let content = read(path)?;
        let mut splits: std::collections::HashMap<String, Vec<(String, String)>> =
            serde_json::from_str(&content).map_err(|error| invalid(path, error.line(), error.to_string()))?;

        let mut split = |in_scope: &str, out_of_scope: &str| -> Result<Dataset, DatasetError> {
            let mut rows = splits.remove(in_scope).ok_or_else(|| invalid(path, 1, format!("no `{in_scope}` array")))?;
            let in_scope_count = rows.len();
            rows.extend(splits.remove(out_of_scope).unwrap_or_default());
            if let Some(index) = rows.iter().position(|(text, _)| bot_core::text::is_blank(text)) {
                let (name, index) =
                    if index < in_scope_count { (in_scope, index) } else { (out_of_scope, index - in_scope_count) };
                return Err(DatasetError::InvalidRow {
                    path: path.to_owned(),
                    problem: format!("`{name}` row {index} (counting from 0): {EMPTY_TEXT}"),
                });
            }
            let examples = rows
                .into_iter()
                .map(|(text, intent)| LabeledText { text, intent: (intent != CLINC_OUT_OF_SCOPE).then(|| IntentId::new(intent)) })
                .collect();
            Ok(Dataset { examples })
        };
        Ok(Clinc150 { train: split("train", "oos_train")?, val: split("val", "oos_val")?, test: split("test", "oos_test")? })
    }
}

/// Reads a data file; a leading byte order mark, as spreadsheet programs
/// write it, is dropped.
fn read(path: &Path) -> Result<String, DatasetError> {
    let content = fs::read_to_string(path).map_err(|source| DatasetError::Io { path: path.to_owned(), source })?;
    Ok(match content.strip_prefix('\u{FEFF}') {
        Some(rest) => rest.to_owned(),
        None => content,
    })
}

fn invalid(path: &Path, line: usize, problem: String) -> DatasetError {
    DatasetError::Invalid { path: PathBuf::from(path), line, problem }
}

/// A CSV record's fields and the line it starts on.
type CsvRecord = (usize, Vec<String>);

/// Splits RFC 4180 CSV into records. An error gives the line of the problem and a description.
fn parse_csv(content: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut in_quotes = false;
    let mut quote_line = 0;
    let mut chars = content.chars().peekable();

    while let Some(ch) = chars.next() {
        if in_quotes {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => {
                    line += usize::from(ch == '\n');
                    field.push(ch);
                }
            }
            continue;
        }
        match ch {
            '"' if field.is_empty() => {
                in_quotes = true;
                quote_line = line;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push((record_line, std::mem::take(&mut record)));
                line += 1;
                record_line = line;
            }
            _ => field.push(ch),
        }
    }
    if in_quotes {
        return Err((quote_line, "quoted field is not closed".to_owned()));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((record_line, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::parse_csv;

    type Failure = (usize, String);

    #[test]
    fn csv_quoted_fields_with_commas_quotes_and_newlines() -> Result<(), Failure> {
        let records = parse_csv("text,category\n\"a, \"\"b\"\"\nc\",x\r\nplain,y\n")?;
        let fields: Vec<Vec<String>> = records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(fields, [vec!["text", "category"], vec!["a, \"b\"\nc", "x"], vec!["plain", "y"]]);
        Ok(())
    }

    #[test]
    fn csv_records_start_lines() -> Result<(), Failure> {
        let records = parse_csv("h,i\n\"x\ny\",1\nz,2")?;
        let lines: Vec<usize> = records.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [1, 2, 4]);
        Ok(())
    }

    #[test]
    fn empty_texts_rejected_with_line() {
        let folder = std::env::temp_dir().join(format!("lepton-dataset-empty-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        for (name, content, line) in [
            ("rows.csv", "text,category\nrefund please,refund\n\"  \",refund\n", 3),
            ("zero-width.csv", "text,category\nrefund please,refund\n\u{200B}\u{FEFF},refund\n", 3),
            ("rows.jsonl", "{\"text\": \"refund please\", \"intent\": \"refund\"}\n\n{\"text\": \"\", \"intent\": null}\n", 3),
        ] {
            let path = folder.join(name);
            std::fs::write(&path, content).unwrap();
            let error = super::Dataset::load(&path).unwrap_err().to_string();
            assert!(error.contains(&format!(":{line}")), "{name}: {error}");
            assert!(error.contains("the text is empty"), "{name}: {error}");
        }
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn clinc_empty_text_names_split_and_row() {
        let path = std::env::temp_dir().join(format!("lepton-clinc-empty-{}.json", std::process::id()));
        let json = r#"{"train": [["refund please", "refund"]], "val": [], "test": [["ok", "refund"]],
            "oos_train": [], "oos_val": [], "oos_test": [["fine", "oos"], [" ", "oos"]]}"#;
        std::fs::write(&path, json).unwrap();
        let error = super::Clinc150::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(error.contains("`oos_test` row 1"), "{error}");
        assert!(error.contains("the text is empty"), "{error}");
    }

    #[test]
    fn byte_order_mark_is_dropped() {
        let path = std::env::temp_dir().join(format!("lepton-bom-{}.csv", std::process::id()));
        std::fs::write(&path, "\u{FEFF}text,category\nrefund please,refund\n").unwrap();
        let dataset = super::Dataset::load(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(dataset.unwrap().len(), 1);
    }

    #[test]
    fn jsonl_error_gives_column_once() {
        let path = std::env::temp_dir().join(format!("lepton-jsonl-column-{}.jsonl", std::process::id()));
        std::fs::write(&path, "{\"text\": \"a\", \"intent\": \"x\"}\n{\"intent\": \"x\"}\n").unwrap();
        let error = super::Dataset::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(error.contains(":2: missing field `text` (column 15)"), "{error}");
        assert!(!error.contains("line 1"), "{error}");
    }

    #[test]
    fn csv_unclosed_quote_is_an_error() {
        assert_eq!(parse_csv("a,b\n\"open,1\n"), Err((2, "quoted field is not closed".to_owned())));
    }
}
