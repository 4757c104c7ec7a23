//! Typed access to a step's YAML parameters, with errors that name the line, the
//! parameter and what is allowed, and a check that no parameter was misspelled.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::spec::{Located, StepSpec, Value};

/// A parameter a stage accepts, with its default and meaning (the stage catalogue's docs).
#[derive(Clone, Copy, Debug)]
pub struct ParamDoc {
    /// The YAML key (scanpy's argument name).
    pub name: &'static str,
    /// The default, as text.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// The parameters of one step, read one by one.
pub struct Params<'a> {
    step: &'a StepSpec,
    file: &'a Path,
    used: BTreeSet<String>,
    seed: u64,
}

impl<'a> Params<'a> {
    /// Start reading `step`'s parameters.
    pub fn new(step: &'a StepSpec, file: &'a Path) -> Self {
        Params { step, file, used: BTreeSet::new(), seed: 0 }
    }

    /// Give the pipeline's `seed`, the default of every `random_state`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The pipeline's seed (scanpy's `random_state` default is 0, as is the pipeline's).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// An error at the step's line.
    pub fn step_error(&self, message: impl Into<String>) -> EngineError {
        EngineError::Spec {
            file: self.file.to_path_buf(),
            line: self.step.line,
            column: 0,
            message: format!("step {} ({}): {}", self.step.id, self.step.stage.value, message.into()),
        }
    }

    /// An error at a parameter's line.
    pub fn error(&self, name: &str, message: impl Into<String>) -> EngineError {
        let (line, column) = self.step.params.get(name).map_or((self.step.line, 0), |v| (v.line, v.column));
        let line = if line == 0 { self.step.line } else { line };
        EngineError::Spec {
            file: self.file.to_path_buf(),
            line,
            column,
            message: format!("step {} ({}): parameter {name}: {}", self.step.id, self.step.stage.value, message.into()),
        }
    }

    /// Whether the parameter was written at all (null included).
    pub fn has(&self, name: &str) -> bool {
        self.step.params.contains_key(name)
    }

    fn take(&mut self, name: &str) -> Option<&'a Located<Value>> {
        self.used.insert(name.to_string());
        self.step.params.get(name)
    }

    /// An optional number (integer or float); null means absent.
    pub fn f64_opt(&mut self, name: &str) -> Result<Option<f64>> {
        match self.take(name).map(|v| &v.value) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i as f64)),
            Some(Value::Float(f)) if !f.is_nan() => Ok(Some(*f)),
            Some(other) => Err(self.error(name, format!("expected a number, found {}", other.type_name()))),
        }
    }

    /// A number with a default.
    pub fn f64_or(&mut self, name: &str, default: f64) -> Result<f64> {
        Ok(self.f64_opt(name)?.unwrap_or(default))
    }

    /// An optional non-negative integer.
    pub fn u64_opt(&mut self, name: &str) -> Result<Option<u64>> {
        match self.take(name).map(|v| &v.value) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(Value::Int(i)) => Err(self.error(name, format!("must be ≥ 0, found {i}"))),
            Some(Value::Float(f)) if f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15 => Ok(Some(*f as u64)),
            Some(other) => Err(self.error(name, format!("expected a whole number, found {}", other.type_name()))),
        }
    }

    /// A whole number (possibly negative) with a default.
    pub fn i64_or(&mut self, name: &str, default: i64) -> Result<i64> {
        match self.take(name).map(|v| &v.value) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Int(i)) => Ok(*i),
            Some(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
            Some(other) => Err(self.error(name, format!("expected a whole number, found {}", other.type_name()))),
        }
    }

    /// scanpy's `restrict_to=(key, [categories])`, written `[key, [cat, …]]` or
    /// `[key, cat, …]`.
    pub fn restrict_to(&mut self, name: &str) -> Result<Option<(String, Vec<String>)>> {
        let bad = |s: &Self, found: &str| s.error(name, format!("expected [obs column, [category, …]], found {found}"));
        match self.take(name).map(|v| v.value.clone()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::List(items)) => {
                let mut it = items.into_iter();
                let key = match it.next() {
                    Some(Value::Str(k)) => k,
                    Some(other) => return Err(bad(self, other.type_name())),
                    None => return Err(bad(self, "an empty list")),
                };
                let mut cats = Vec::new();
                for v in it {
                    match v {
                        Value::Str(c) => cats.push(c),
                        Value::Int(i) => cats.push(i.to_string()),
                        Value::List(inner) => {
                            for c in inner {
                                match c {
                                    Value::Str(c) => cats.push(c),
                                    Value::Int(i) => cats.push(i.to_string()),
                                    other => return Err(bad(self, other.type_name())),
                                }
                            }
                        }
                        other => return Err(bad(self, other.type_name())),
                    }
                }
                if cats.is_empty() {
                    return Err(bad(self, "no categories"));
                }
                Ok(Some((key, cats)))
            }
            Some(other) => Err(bad(self, other.type_name())),
        }
    }

    /// A boolean with a default.
    pub fn bool_or(&mut self, name: &str, default: bool) -> Result<bool> {
        match self.take(name).map(|v| &v.value) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(name, format!("expected true or false, found {}", other.type_name()))),
        }
    }

    /// An optional string.
    pub fn str_opt(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name).map(|v| &v.value) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(name, format!("expected a string, found {}", other.type_name()))),
        }
    }

    /// One of `allowed`, with a default.
    pub fn choice(&mut self, name: &str, allowed: &[&str], default: &str) -> Result<String> {
        let v = self.str_opt(name)?.unwrap_or_else(|| default.to_string());
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.error(name, format!("{v:?} is not allowed; allowed: {}", allowed.join(", "))))
        }
    }

    /// A list of whole numbers; `null` gives `Some(vec![])`-free None; absent gives the default.
    pub fn usize_list(&mut self, name: &str, default: &[usize]) -> Result<Vec<usize>> {
        match self.take(name).map(|v| &v.value) {
            None => Ok(default.to_vec()),
            Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Int(i)) if *i > 0 => Ok(vec![*i as usize]),
            Some(Value::List(items)) => items
                .iter()
                .map(|it| match it {
                    Value::Int(i) if *i > 0 => Ok(*i as usize),
                    other => Err(self.error(name, format!("expected positive whole numbers, found {}", other.type_name()))),
                })
                .collect(),
            Some(other) => Err(self.error(name, format!("expected a list of whole numbers, found {}", other.type_name()))),
        }
    }

    /// A list of strings (a single string counts as a list of one).
    pub fn str_list(&mut self, name: &str) -> Result<Vec<String>> {
        match self.take(name).map(|v| &v.value) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Str(s)) => Ok(vec![s.clone()]),
            Some(Value::List(items)) => items
                .iter()
                .map(|it| match it {
                    Value::Str(s) => Ok(s.clone()),
                    other => Err(self.error(name, format!("expected strings, found {}", other.type_name()))),
                })
                .collect(),
            Some(other) => Err(self.error(name, format!("expected a list of strings, found {}", other.type_name()))),
        }
    }

    /// Fail on any parameter the stage does not know, suggesting the closest one. Run
    /// before the stage reads its parameters (so a misspelling is named as such) and after
    /// (`finish`), which catches a catalogue entry that documents a parameter never read.
    pub fn check_known(&self, allowed: &[ParamDoc]) -> Result<()> {
        self.unknown(allowed, |name| allowed.iter().any(|p| p.name == name))
    }

    /// Fail on any parameter the stage did not read, suggesting the closest one.
    pub fn finish(self, allowed: &[ParamDoc]) -> Result<()> {
        self.unknown(allowed, |name| self.used.contains(name))
    }

    fn unknown(&self, allowed: &[ParamDoc], known: impl Fn(&str) -> bool) -> Result<()> {
        for (name, v) in &self.step.params {
            if known(name) {
                continue;
            }
            let names: Vec<&str> = allowed.iter().map(|p| p.name).collect();
            let hint = closest(name, &names).map(|c| format!(" (did you mean {c}?)")).unwrap_or_default();
            return Err(EngineError::Spec {
                file: self.file.to_path_buf(),
                line: if v.line == 0 { self.step.line } else { v.line },
                column: v.column,
                message: format!(
                    "step {} ({}): unknown parameter {name:?}{hint}; allowed: {}",
                    self.step.id,
                    self.step.stage.value,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            });
        }
        Ok(())
    }
}

/// The allowed word nearest to `word` by edit distance, if it is close.
pub fn closest<'b>(word: &str, allowed: &[&'b str]) -> Option<&'b str> {
    allowed
        .iter()
        .map(|a| (edit_distance(word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

// Levenshtein distance: twelve lines are simpler than a dependency for a spelling hint.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(closest("min_gene", &["min_genes", "max_genes"]), Some("min_genes"));
        assert_eq!(closest("zzz", &["min_genes"]), None);
    }
}
