//! SOMA value filters.
//!
//! The CELLxGENE Census client selects cells and genes with *value filters* written in the
//! small Python-expression language of tiledbsoma's `QueryCondition`, for example
//! `obs_value_filter="dataset_id == 'abc' and tissue in ['liver', 'lung']"`. This module parses
//! such a filter into a [`FilterExpr`] tree, checks it against an Arrow schema
//! ([`ValueFilter::check`]) and turns it into a DataFusion logical [`Expr`]
//! ([`ValueFilter::to_expr`]) that the atlas reader pushes into its Parquet scans.
//!
//! The parser is hand-written: no Rust crate parses tiledbsoma's Python-expression syntax
//! (tiledbsoma itself leans on Python's `ast` module), and SQL parsers disagree with it on
//! `==`, `&`/`|`, `True`/`False` and `attr("…")`.
//!
//! # Grammar
//!
//! ```text
//! filter     := or
//! or         := and (("or" | "|") and)*
//! and        := not (("and" | "&") not)*
//! not        := "not" not | primary
//! primary    := "(" or ")" | comparison
//! comparison := operand (cmp operand)+            -- chains: 1 < nnz <= 5
//!             | column ["not"] "in" list
//! cmp        := "==" | "!=" | "<" | "<=" | ">" | ">="
//! list       := "[" [value ("," value)* [","]] "]" | "(" … ")"
//! operand    := column | value
//! column     := identifier | attr("any name")
//! value      := string | ["-" | "+"] number | True | False | true | false
//! ```
//!
//! Precedence is `not` > `and` > `or`, with comparisons binding tighter than all of them. Unlike
//! Python, `&` and `|` are plain synonyms of `and` and `or` (so `a == 1 & b == 2` means
//! `(a == 1) and (b == 2)`, which is what Census users mean by it). A comparison needs a column on
//! one side and a value on the other; either order is accepted (`5 < nnz` is `nnz > 5`).
//! Strings take single or double quotes with backslash escapes (`\\`, `\'`, `\"`, `\n`, `\t`);
//! integers that do not fit an `i64` become floats.
//!
//! # Null semantics
//!
//! Filters follow SQL three-valued logic: a comparison or `in` test against a null cell is
//! *unknown*, and unknown rows are not selected. So a row whose `tissue` is null matches neither
//! `tissue == 'liver'`, `tissue != 'liver'`, `not (tissue == 'liver')` nor
//! `tissue not in ['liver']`; it can still be selected through an `or` whose other side is true.

use std::fmt;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, lit};

/// Deepest nesting of parentheses and `not` accepted, so that hostile input cannot exhaust the
/// stack of the parser or of DataFusion's recursive expression walkers.
const MAX_DEPTH: usize = 64;

/// How many column names an "unknown column" message lists before eliding the rest.
const MAX_LISTED_COLUMNS: usize = 12;

/// A parsed SOMA value filter: the expression tree plus the original text (kept for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueFilter {
    text: String,
    expr: FilterExpr,
    /// Character offsets of every leaf (comparison / `in`) in left-to-right order, which is
    /// also the order in which a left-to-right walk of `expr` meets the leaves.
    leaves: Vec<LeafSpan>,
}

/// Where a leaf's column and values sit in the text, for `check` messages.
#[derive(Debug, Clone, PartialEq)]
struct LeafSpan {
    column: usize,
    values: Vec<usize>,
}

/// The tree of a value filter: comparisons and `in` tests on columns, combined with
/// `and`/`or`/`not`.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterExpr {
    /// `column op value`; a comparison written value-first is stored flipped (`5 < x` → `x > 5`).
    Compare {
        /// The column compared.
        column: String,
        /// The comparison operator, with the column on its left.
        op: CmpOp,
        /// The value the column is compared with.
        value: Literal,
    },
    /// `column in [values]`, or `column not in [values]` when `negated`.
    In {
        /// The column tested.
        column: String,
        /// The list of values (may be empty: `in []` matches nothing).
        values: Vec<Literal>,
        /// True for `not in`.
        negated: bool,
    },
    /// Both sides hold.
    And(Box<FilterExpr>, Box<FilterExpr>),
    /// Either side holds.
    Or(Box<FilterExpr>, Box<FilterExpr>),
    /// The inner filter does not hold (SQL semantics: `not unknown` is still unknown).
    Not(Box<FilterExpr>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written in a filter.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped: `a < b` ⇔ `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A literal value in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string (escapes already resolved).
    Str(String),
    /// An integer that fits an `i64`.
    Int(i64),
    /// A float, or an integer too large for an `i64`.
    Float(f64),
    /// `True`/`False` (or `true`/`false`).
    Bool(bool),
}

impl Literal {
    /// A short description of the literal's kind and value, for messages.
    fn describe(&self) -> String {
        match self {
            Literal::Str(_) => format!("the string {self}"),
            Literal::Int(_) | Literal::Float(_) => format!("the number {self}"),
            Literal::Bool(_) => format!("the boolean {self}"),
        }
    }

    /// The literal as a DataFusion scalar expression.
    fn to_expr(&self) -> Expr {
        match self {
            Literal::Str(s) => lit(s.clone()),
            Literal::Int(i) => lit(*i),
            Literal::Float(x) => lit(*x),
            Literal::Bool(b) => lit(*b),
        }
    }
}

impl fmt::Display for Literal {
    /// Writes the literal in filter syntax, so that it parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write_quoted(f, s, '\''),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::Bool(true) => f.write_str("True"),
            Literal::Bool(false) => f.write_str("False"),
        }
    }
}

/// Writes `s` between `quote`s, escaping backslashes and the quote.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    use fmt::Write;
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c == quote => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

/// Words with a meaning of their own, which a bare column name cannot be.
const KEYWORDS: &[&str] = &["and", "or", "not", "in", "True", "False", "true", "false"];

/// Whether `name` can be written bare (otherwise it needs `attr("…")`).
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !KEYWORDS.contains(&name)
}

/// Writes a column name bare when possible, else as `attr("…")`.
fn write_column(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_plain_identifier(name) {
        f.write_str(name)
    } else {
        f.write_str("attr(")?;
        write_quoted(f, name, '"')?;
        f.write_str(")")
    }
}

impl fmt::Display for FilterExpr {
    /// Writes the filter in canonical filter syntax (parses back to an equal tree, up to the
    /// grouping of `and`/`or` chains).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterExpr::Compare { column, op, value } => {
                write_column(f, column)?;
                write!(f, " {op} {value}")
            }
            FilterExpr::In {
                column,
                values,
                negated,
            } => {
                write_column(f, column)?;
                f.write_str(if *negated { " not in [" } else { " in [" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            FilterExpr::And(l, r) => {
                for (i, side) in [l, r].into_iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    if matches!(**side, FilterExpr::Or(..)) {
                        write!(f, "({side})")?;
                    } else {
                        write!(f, "{side}")?;
                    }
                }
                Ok(())
            }
            FilterExpr::Or(l, r) => write!(f, "{l} or {r}"),
            FilterExpr::Not(inner) => match **inner {
                FilterExpr::Compare { .. } | FilterExpr::In { .. } | FilterExpr::Not(_) => {
                    write!(f, "not {inner}")
                }
                _ => write!(f, "not ({inner})"),
            },
        }
    }
}

/// Why a filter could not be parsed or does not fit a table: the message, and the character
/// offset (0-based, in chars not bytes) in the filter text where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {pos} of value filter {text:?}", pos = .offset + 1)]
pub struct FilterError {
    /// The whole filter text.
    pub text: String,
    /// 0-based character offset of the problem (equal to the char count for "at the end").
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl ValueFilter {
    /// Parses a SOMA value filter (see the module docs for the grammar). Never panics; any
    /// malformed input gives a [`FilterError`] naming the problem and its position.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            text,
            tokens,
            pos: 0,
            depth: 0,
            leaves: Vec::new(),
        };
        if parser.peek().kind == Tok::Eof {
            return Err(parser.error_at(
                parser.peek().offset,
                "empty value filter: expected a condition such as column == 'value'".into(),
            ));
        }
        let expr = parser.parse_or()?;
        let next = parser.peek().clone();
        if next.kind != Tok::Eof {
            let message = match &next.kind {
                Tok::RParen => "unmatched ')'".to_string(),
                Tok::Ident(w)
                    if ["and", "or", "not", "in"].contains(&w.to_lowercase().as_str()) =>
                {
                    format!(
                        "unexpected '{w}' after a complete condition (keywords are lower case: '{}')",
                        w.to_lowercase()
                    )
                }
                other => format!(
                    "unexpected {} after a complete condition (join conditions with 'and' / 'or')",
                    other.describe()
                ),
            };
            return Err(parser.error_at(next.offset, message));
        }
        Ok(ValueFilter {
            text: text.to_string(),
            expr,
            leaves: parser.leaves,
        })
    }

    /// The filter text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed expression tree.
    pub fn expr(&self) -> &FilterExpr {
        &self.expr
    }

    /// The columns the filter references, sorted and deduplicated (so a reader can tell which
    /// columns it must load).
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_columns(&self.expr, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Checks column names and literal types against a table schema, so that a typo or a
    /// quoting mistake is reported against the filter text instead of as an opaque planner
    /// error. An unknown column gets a did-you-mean suggestion (case-insensitive match or edit
    /// distance ≤ 2) and the list of columns; a string compared with a numeric or boolean
    /// column, or a number / boolean compared with a string column, is a type error naming the
    /// column and its type. Dictionary<_, Utf8>, Utf8, LargeUtf8 and Utf8View count as string
    /// columns. Columns of other types (dates, lists, …) are not type-checked here.
    pub fn check(&self, schema: &Schema) -> Result<(), FilterError> {
        let mut leaf = 0usize;
        self.check_node(&self.expr, schema, &mut leaf)
    }

    fn check_node(
        &self,
        expr: &FilterExpr,
        schema: &Schema,
        leaf: &mut usize,
    ) -> Result<(), FilterError> {
        match expr {
            FilterExpr::And(l, r) | FilterExpr::Or(l, r) => {
                self.check_node(l, schema, leaf)?;
                self.check_node(r, schema, leaf)
            }
            FilterExpr::Not(inner) => self.check_node(inner, schema, leaf),
            FilterExpr::Compare { column, value, .. } => {
                let span = self.leaves.get(*leaf).cloned();
                *leaf += 1;
                self.check_leaf(column, std::slice::from_ref(value), span, schema)
            }
            FilterExpr::In { column, values, .. } => {
                let span = self.leaves.get(*leaf).cloned();
                *leaf += 1;
                self.check_leaf(column, values, span, schema)
            }
        }
    }

    fn check_leaf(
        &self,
        column: &str,
        values: &[Literal],
        span: Option<LeafSpan>,
        schema: &Schema,
    ) -> Result<(), FilterError> {
        let col_offset = span.as_ref().map_or(0, |s| s.column);
        let Some(field) = schema.fields().iter().find(|f| f.name() == column) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let mut message = format!("unknown column '{column}'");
            if let Some(s) = suggest(column, &names) {
                message.push_str(&format!("; did you mean '{s}'?"));
            }
            message.push_str(&format!(" (columns: {})", list_columns(&names)));
            return Err(self.error_at(col_offset, message));
        };
        let kind = value_kind(field.data_type());
        for (i, value) in values.iter().enumerate() {
            let ok = matches!(
                (kind, value),
                (Kind::Other, _)
                    | (Kind::Str, Literal::Str(_))
                    | (Kind::Num, Literal::Int(_) | Literal::Float(_))
                    | (Kind::Bool, Literal::Bool(_))
            );
            if !ok {
                let offset = span
                    .as_ref()
                    .and_then(|s| s.values.get(i).copied())
                    .unwrap_or(col_offset);
                let hint = match (kind, value) {
                    (Kind::Str, _) => "; quote the value to compare as text",
                    (Kind::Num, Literal::Str(_)) => "; write numbers without quotes",
                    (Kind::Bool, _) => "; compare with True or False",
                    _ => "",
                };
                let message = format!(
                    "type mismatch: column '{column}' has type {} ({}) but is compared with {}{hint}",
                    field.data_type(),
                    kind.name(),
                    value.describe()
                );
                return Err(self.error_at(offset, message));
            }
        }
        Ok(())
    }

    /// The filter as a DataFusion logical expression: `col == v` → `col(..).eq(lit(v))`,
    /// `in` → `in_list`, and `and`/`or`/`not` as such. Column references are unqualified
    /// [`Column`]s built from the exact name, so case, dots and spaces survive. An empty `in []`
    /// becomes `false` (`not in []` becomes `true`). Nulls follow SQL semantics (see the module
    /// docs).
    pub fn to_expr(&self) -> Expr {
        node_to_expr(&self.expr)
    }

    fn error_at(&self, offset: usize, message: String) -> FilterError {
        FilterError {
            text: self.text.clone(),
            offset,
            message,
        }
    }
}

impl std::str::FromStr for ValueFilter {
    type Err = FilterError;

    /// Same as [`ValueFilter::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ValueFilter::parse(s)
    }
}

impl fmt::Display for ValueFilter {
    /// Writes the original filter text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn collect_columns(expr: &FilterExpr, out: &mut Vec<String>) {
    match expr {
        FilterExpr::Compare { column, .. } | FilterExpr::In { column, .. } => {
            out.push(column.clone())
        }
        FilterExpr::And(l, r) | FilterExpr::Or(l, r) => {
            collect_columns(l, out);
            collect_columns(r, out);
        }
        FilterExpr::Not(inner) => collect_columns(inner, out),
    }
}

fn node_to_expr(expr: &FilterExpr) -> Expr {
    match expr {
        FilterExpr::Compare { column, op, value } => {
            let c = column_expr(column);
            let v = value.to_expr();
            match op {
                CmpOp::Eq => c.eq(v),
                CmpOp::Ne => c.not_eq(v),
                CmpOp::Lt => c.lt(v),
                CmpOp::Le => c.lt_eq(v),
                CmpOp::Gt => c.gt(v),
                CmpOp::Ge => c.gt_eq(v),
            }
        }
        FilterExpr::In {
            column,
            values,
            negated,
        } => {
            if values.is_empty() {
                lit(*negated)
            } else {
                column_expr(column).in_list(values.iter().map(Literal::to_expr).collect(), *negated)
            }
        }
        FilterExpr::And(l, r) => node_to_expr(l).and(node_to_expr(r)),
        FilterExpr::Or(l, r) => node_to_expr(l).or(node_to_expr(r)),
        FilterExpr::Not(inner) => !node_to_expr(inner),
    }
}

/// An unqualified column reference that keeps the name verbatim (no parsing of dots, no
/// lower-casing).
fn column_expr(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// What kind of literal a column accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Num,
    Bool,
    Other,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string column",
            Kind::Num => "a numeric column",
            Kind::Bool => "a boolean column",
            Kind::Other => "a column",
        }
    }
}

fn value_kind(dt: &DataType) -> Kind {
    use DataType::*;
    match dt {
        Utf8 | LargeUtf8 | Utf8View => Kind::Str,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float16 | Float32
        | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => Kind::Num,
        Boolean => Kind::Bool,
        Dictionary(_, values) => value_kind(values),
        _ => Kind::Other,
    }
}

/// The closest column name: an exact case-insensitive match first, else the smallest edit
/// distance if it is at most 2 (ties go to the first in schema order).
fn suggest<'a>(name: &str, names: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    if let Some(n) = names.iter().find(|n| n.to_lowercase() == lower) {
        return Some(n);
    }
    let mut best: Option<(usize, &str)> = None;
    for n in names {
        let d = edit_distance(&lower, &n.to_lowercase());
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.map(|(_, n)| n)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `a, b, c` — or the first few and "… (N more)".
fn list_columns(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    if names.len() <= MAX_LISTED_COLUMNS {
        return names.join(", ");
    }
    format!(
        "{}, … ({} more)",
        names[..MAX_LISTED_COLUMNS].join(", "),
        names.len() - MAX_LISTED_COLUMNS
    )
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// The number's text (digits, '.', exponent), without sign; parsed by the parser.
    Num(String),
    Cmp(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Amp,
    Pipe,
    Minus,
    Plus,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(w) if KEYWORDS.contains(&w.as_str()) => format!("'{w}'"),
            Tok::Ident(w) => format!("name '{w}'"),
            Tok::Str(s) => {
                let lit = Literal::Str(s.clone());
                format!("string {lit}")
            }
            Tok::Num(n) => format!("number {n}"),
            Tok::Cmp(op) => format!("'{op}'"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::Amp => "'&'".into(),
            Tok::Pipe => "'|'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Plus => "'+'".into(),
            Tok::Eof => "the end of the filter".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    /// Char offset of the token's first character.
    offset: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let err = |offset: usize, message: String| FilterError {
        text: text.to_string(),
        offset,
        message,
    };
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        let kind = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '&' => Tok::Amp,
            '|' => Tok::Pipe,
            '-' => Tok::Minus,
            '+' => Tok::Plus,
            '=' if next == Some('=') => Tok::Cmp(CmpOp::Eq),
            '=' => {
                return Err(err(
                    start,
                    "'=' is not a comparison; use '==' for equality".into(),
                ));
            }
            '!' if next == Some('=') => Tok::Cmp(CmpOp::Ne),
            '!' => {
                return Err(err(
                    start,
                    "unexpected '!'; use '!=' for inequality or 'not' for negation".into(),
                ));
            }
            '<' if next == Some('=') => Tok::Cmp(CmpOp::Le),
            '<' => Tok::Cmp(CmpOp::Lt),
            '>' if next == Some('=') => Tok::Cmp(CmpOp::Ge),
            '>' => Tok::Cmp(CmpOp::Gt),
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(err(
                                start,
                                format!("unterminated string (no closing {quote})"),
                            ));
                        }
                        Some(&ch) if ch == quote => break,
                        Some('\\') => {
                            match chars.get(j + 1) {
                                None => {
                                    return Err(err(
                                        start,
                                        format!("unterminated string (no closing {quote})"),
                                    ));
                                }
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some(&e @ ('\\' | '\'' | '"')) => s.push(e),
                                // Like Python: an unknown escape keeps its backslash.
                                Some(&e) => {
                                    s.push('\\');
                                    s.push(e);
                                }
                            }
                            j += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
                out.push(Token {
                    kind: Tok::Str(s),
                    offset: start,
                });
                continue;
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let mut j = i;
                while chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                    j += 1;
                }
                if chars.get(j) == Some(&'.') {
                    j += 1;
                    while chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                        j += 1;
                    }
                }
                if matches!(chars.get(j), Some('e' | 'E')) {
                    let k = match chars.get(j + 1) {
                        Some('+' | '-') => j + 2,
                        _ => j + 1,
                    };
                    if chars.get(k).is_some_and(|d| d.is_ascii_digit()) {
                        j = k;
                        while chars.get(j).is_some_and(|d| d.is_ascii_digit()) {
                            j += 1;
                        }
                    }
                }
                if chars
                    .get(j)
                    .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '.')
                {
                    let mut k = j;
                    while chars
                        .get(k)
                        .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '.')
                    {
                        k += 1;
                    }
                    let word: String = chars[start..k].iter().collect();
                    return Err(err(
                        start,
                        format!(
                            "invalid number '{word}' (column names cannot start with a digit; use attr(\"{word}\"))"
                        ),
                    ));
                }
                let s: String = chars[start..j].iter().collect();
                i = j;
                out.push(Token {
                    kind: Tok::Num(s),
                    offset: start,
                });
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    j += 1;
                }
                if chars.get(j).is_some_and(|d| d.is_alphanumeric()) {
                    return Err(err(
                        j,
                        format!(
                            "unexpected character '{}' in a name; write column names that are not plain ASCII identifiers as attr(\"…\")",
                            chars[j]
                        ),
                    ));
                }
                let s: String = chars[start..j].iter().collect();
                i = j;
                out.push(Token {
                    kind: Tok::Ident(s),
                    offset: start,
                });
                continue;
            }
            c if c.is_alphabetic() => {
                return Err(err(
                    start,
                    format!(
                        "unexpected character '{c}'; write column names that are not plain ASCII identifiers as attr(\"…\")"
                    ),
                ));
            }
            c => return Err(err(start, format!("unexpected character '{c}'"))),
        };
        i += match kind {
            Tok::Cmp(CmpOp::Eq | CmpOp::Ne | CmpOp::Le | CmpOp::Ge) => 2,
            _ => 1,
        };
        out.push(Token {
            kind,
            offset: start,
        });
    }
    out.push(Token {
        kind: Tok::Eof,
        offset: chars.len(),
    });
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser

/// One side of a comparison.
#[derive(Debug, Clone)]
enum Operand {
    Column { name: String, offset: usize },
    Value { value: Literal, offset: usize },
}

impl Operand {
    fn describe(&self) -> String {
        match self {
            Operand::Column { name, .. } => format!("column '{name}'"),
            Operand::Value { value, .. } => format!("value {value}"),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    leaves: Vec<LeafSpan>,
}

/// Combines a chain of `and`/`or` terms into a balanced tree (left-leaning: `a and b and c` is
/// `(a and b) and c`), so that a long chain does not make a deep tree.
fn balance(
    mut terms: Vec<FilterExpr>,
    join: fn(Box<FilterExpr>, Box<FilterExpr>) -> FilterExpr,
) -> Option<FilterExpr> {
    match terms.len() {
        0 => None,
        1 => terms.pop(),
        n => {
            let right = terms.split_off(n.div_ceil(2));
            let l = balance(terms, join)?;
            let r = balance(right, join)?;
            Some(join(Box::new(l), Box::new(r)))
        }
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let i = (self.pos + ahead).min(self.tokens.len() - 1);
        &self.tokens[i].kind
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if t.kind != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().kind, Tok::Ident(w) if w == word)
    }

    fn error_at(&self, offset: usize, message: String) -> FilterError {
        FilterError {
            text: self.text.to_string(),
            offset,
            message,
        }
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> FilterError {
        let t = self.peek();
        let found = match t.kind {
            Tok::Eof => " but the filter ends".to_string(),
            ref k => format!(", found {}", k.describe()),
        };
        self.error_at(t.offset, format!("{what}{found}"))
    }

    fn enter(&mut self, offset: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                offset,
                format!("value filter nested too deeply (more than {MAX_DEPTH} levels of parentheses / 'not')"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<FilterExpr, FilterError> {
        let mut terms = vec![self.parse_and()?];
        while self.is_word("or") || self.peek().kind == Tok::Pipe {
            self.advance();
            terms.push(self.parse_and()?);
        }
        balance(terms, FilterExpr::Or).ok_or_else(|| self.expected("expected a condition"))
    }

    fn parse_and(&mut self) -> Result<FilterExpr, FilterError> {
        let mut terms = vec![self.parse_not()?];
        while self.is_word("and") || self.peek().kind == Tok::Amp {
            self.advance();
            terms.push(self.parse_not()?);
        }
        balance(terms, FilterExpr::And).ok_or_else(|| self.expected("expected a condition"))
    }

    fn parse_not(&mut self) -> Result<FilterExpr, FilterError> {
        if self.is_word("not") {
            let t = self.advance();
            self.enter(t.offset)?;
            let inner = self.parse_not()?;
            self.depth -= 1;
            return Ok(FilterExpr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<FilterExpr, FilterError> {
        if self.peek().kind == Tok::LParen {
            let open = self.advance();
            self.enter(open.offset)?;
            let inner = self.parse_or()?;
            if self.peek().kind != Tok::RParen {
                let what = format!(
                    "expected ')' to close the '(' at character {}",
                    open.offset + 1
                );
                return Err(self.expected(&what));
            }
            self.advance();
            self.depth -= 1;
            return Ok(inner);
        }
        self.parse_comparison()
    }

    fn parse_comparison(&mut self) -> Result<FilterExpr, FilterError> {
        let first = self.parse_operand("expected a condition such as column == 'value'")?;
        let is_in = self.is_word("in");
        let is_not_in =
            self.is_word("not") && matches!(self.peek_at(1), Tok::Ident(w) if w == "in");
        if is_in || is_not_in {
            self.advance();
            if is_not_in {
                self.advance();
            }
            let (column, col_offset) = match first {
                Operand::Column { name, offset } => (name, offset),
                Operand::Value { value, offset } => {
                    return Err(self.error_at(
                        offset,
                        format!(
                            "'{}' needs a column name on its left, found value {value}",
                            if is_not_in { "not in" } else { "in" }
                        ),
                    ));
                }
            };
            let (values, offsets) = self.parse_list(if is_not_in { "not in" } else { "in" })?;
            self.leaves.push(LeafSpan {
                column: col_offset,
                values: offsets,
            });
            return Ok(FilterExpr::In {
                column,
                values,
                negated: is_not_in,
            });
        }
        let Tok::Cmp(_) = self.peek().kind else {
            let what = format!(
                "expected a comparison (==, !=, <, <=, >, >=, in, not in) after {}",
                first.describe()
            );
            return Err(self.expected(&what));
        };
        let mut operands = vec![first];
        let mut ops = Vec::new();
        while let Tok::Cmp(op) = self.peek().kind {
            self.advance();
            let what = format!("expected a value after '{op}'");
            operands.push(self.parse_operand(&what)?);
            ops.push(op);
        }
        let mut terms = Vec::with_capacity(ops.len());
        for (k, op) in ops.into_iter().enumerate() {
            let (l, r) = (&operands[k], &operands[k + 1]);
            let (column, col_offset, op, value, value_offset) = match (l, r) {
                (Operand::Column { name, offset }, Operand::Value { value, offset: vo }) => {
                    (name, *offset, op, value, *vo)
                }
                (Operand::Value { value, offset: vo }, Operand::Column { name, offset }) => {
                    (name, *offset, op.flipped(), value, *vo)
                }
                (Operand::Column { name: a, .. }, Operand::Column { name: b, offset }) => {
                    return Err(self.error_at(
                        *offset,
                        format!(
                            "comparison between two columns ('{a}' {op} '{b}') is not supported; one side must be a value (quote strings: '{b}')"
                        ),
                    ));
                }
                (Operand::Value { value: a, .. }, Operand::Value { value: b, offset }) => {
                    return Err(self.error_at(
                        *offset,
                        format!(
                            "comparison between two values ({a} {op} {b}); one side must be a column name"
                        ),
                    ));
                }
            };
            self.leaves.push(LeafSpan {
                column: col_offset,
                values: vec![value_offset],
            });
            terms.push(FilterExpr::Compare {
                column: column.clone(),
                op,
                value: value.clone(),
            });
        }
        balance(terms, FilterExpr::And).ok_or_else(|| self.expected("expected a comparison"))
    }

    /// A column name or a literal; `what` is the message if neither is found.
    fn parse_operand(&mut self, what: &str) -> Result<Operand, FilterError> {
        let t = self.peek().clone();
        match &t.kind {
            Tok::Ident(w) => match w.as_str() {
                "True" | "true" => {
                    self.advance();
                    Ok(Operand::Value {
                        value: Literal::Bool(true),
                        offset: t.offset,
                    })
                }
                "False" | "false" => {
                    self.advance();
                    Ok(Operand::Value {
                        value: Literal::Bool(false),
                        offset: t.offset,
                    })
                }
                "and" | "or" | "not" | "in" => Err(self.expected(what)),
                "attr" if *self.peek_at(1) == Tok::LParen => {
                    self.advance();
                    self.advance();
                    let Tok::Str(name) = self.peek().kind.clone() else {
                        return Err(self.expected("expected a quoted column name inside attr(…)"));
                    };
                    self.advance();
                    if self.peek().kind != Tok::RParen {
                        return Err(self.expected("expected ')' after the name in attr(…)"));
                    }
                    self.advance();
                    Ok(Operand::Column {
                        name,
                        offset: t.offset,
                    })
                }
                _ => {
                    self.advance();
                    Ok(Operand::Column {
                        name: w.clone(),
                        offset: t.offset,
                    })
                }
            },
            Tok::Str(s) => {
                self.advance();
                Ok(Operand::Value {
                    value: Literal::Str(s.clone()),
                    offset: t.offset,
                })
            }
            Tok::Num(n) => {
                self.advance();
                let value = self.number(n, false, t.offset)?;
                Ok(Operand::Value {
                    value,
                    offset: t.offset,
                })
            }
            Tok::Minus | Tok::Plus => {
                let negative = t.kind == Tok::Minus;
                self.advance();
                let Tok::Num(n) = self.peek().kind.clone() else {
                    let sign = if negative { '-' } else { '+' };
                    return Err(self.expected(&format!("expected a number after '{sign}'")));
                };
                self.advance();
                let value = self.number(&n, negative, t.offset)?;
                Ok(Operand::Value {
                    value,
                    offset: t.offset,
                })
            }
            _ => Err(self.expected(what)),
        }
    }

    /// Parses a number token's text; integers that overflow `i64` become floats.
    fn number(&self, text: &str, negative: bool, offset: usize) -> Result<Literal, FilterError> {
        let signed = if negative {
            format!("-{text}")
        } else {
            text.to_string()
        };
        let is_float = text.contains(['.', 'e', 'E']);
        if !is_float && let Ok(i) = signed.parse::<i64>() {
            return Ok(Literal::Int(i));
        }
        match signed.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Literal::Float(x)),
            _ => Err(self.error_at(offset, format!("number {signed} is out of range"))),
        }
    }

    /// `[v, …]` or `(v, …)` after `in` / `not in`; returns the values and their offsets.
    fn parse_list(&mut self, kw: &str) -> Result<(Vec<Literal>, Vec<usize>), FilterError> {
        let (close, close_char) = match self.peek().kind {
            Tok::LBracket => (Tok::RBracket, ']'),
            Tok::LParen => (Tok::RParen, ')'),
            _ => {
                return Err(
                    self.expected(&format!("expected a list such as ['a', 'b'] after '{kw}'"))
                );
            }
        };
        self.advance();
        let mut values = Vec::new();
        let mut offsets = Vec::new();
        loop {
            if self.peek().kind == close {
                self.advance();
                break;
            }
            let what = if values.is_empty() {
                format!("expected a value or '{close_char}' in the list after '{kw}'")
            } else {
                format!("expected a value in the list after '{kw}'")
            };
            match self.parse_operand(&what)? {
                Operand::Value { value, offset } => {
                    values.push(value);
                    offsets.push(offset);
                }
                Operand::Column { name, offset } => {
                    return Err(self.error_at(
                        offset,
                        format!(
                            "expected a value in the list after '{kw}', found name '{name}' (quote strings: '{name}')"
                        ),
                    ));
                }
            }
            match self.peek().kind {
                Tok::Comma => {
                    self.advance();
                }
                ref k if *k == close => {
                    self.advance();
                    break;
                }
                _ => {
                    return Err(self.expected(&format!(
                        "expected ',' or '{close_char}' in the list after '{kw}'"
                    )));
                }
            }
        }
        Ok((values, offsets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray,
    };
    use arrow::datatypes::{Field, Int32Type};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    fn p(text: &str) -> FilterExpr {
        match ValueFilter::parse(text) {
            Ok(f) => f.expr().clone(),
            Err(e) => panic!("parse of {text:?} failed: {e}"),
        }
    }

    fn perr(text: &str) -> FilterError {
        match ValueFilter::parse(text) {
            Ok(f) => panic!("parse of {text:?} unexpectedly succeeded: {:?}", f.expr()),
            Err(e) => e,
        }
    }

    fn cmp(column: &str, op: CmpOp, value: Literal) -> FilterExpr {
        FilterExpr::Compare {
            column: column.into(),
            op,
            value,
        }
    }

    fn s(v: &str) -> Literal {
        Literal::Str(v.into())
    }

    fn and(a: FilterExpr, b: FilterExpr) -> FilterExpr {
        FilterExpr::And(Box::new(a), Box::new(b))
    }

    fn or(a: FilterExpr, b: FilterExpr) -> FilterExpr {
        FilterExpr::Or(Box::new(a), Box::new(b))
    }

    fn not(a: FilterExpr) -> FilterExpr {
        FilterExpr::Not(Box::new(a))
    }

    fn a1() -> FilterExpr {
        cmp("a", CmpOp::Eq, Literal::Int(1))
    }
    fn b2() -> FilterExpr {
        cmp("b", CmpOp::Eq, Literal::Int(2))
    }
    fn c3() -> FilterExpr {
        cmp("c", CmpOp::Eq, Literal::Int(3))
    }

    #[test]
    fn filter_parses_comparisons() {
        use CmpOp::*;
        assert_eq!(p("dataset_id == 'abc'"), cmp("dataset_id", Eq, s("abc")));
        assert_eq!(p("x != \"q\""), cmp("x", Ne, s("q")));
        assert_eq!(p("nnz<5"), cmp("nnz", Lt, Literal::Int(5)));
        assert_eq!(p("nnz <= 5"), cmp("nnz", Le, Literal::Int(5)));
        assert_eq!(p("nnz > -2.5"), cmp("nnz", Gt, Literal::Float(-2.5)));
        assert_eq!(p("nnz >= 1e4"), cmp("nnz", Ge, Literal::Float(1e4)));
        assert_eq!(p("nnz >= 1E-2"), cmp("nnz", Ge, Literal::Float(0.01)));
        assert_eq!(p("x == .5"), cmp("x", Eq, Literal::Float(0.5)));
        assert_eq!(p("x == - 7"), cmp("x", Eq, Literal::Int(-7)));
        assert_eq!(p("x == +7"), cmp("x", Eq, Literal::Int(7)));
        // Reversed comparisons are flipped.
        assert_eq!(p("5 < nnz"), cmp("nnz", Gt, Literal::Int(5)));
        assert_eq!(p("5 <= nnz"), cmp("nnz", Ge, Literal::Int(5)));
        assert_eq!(p("5 > nnz"), cmp("nnz", Lt, Literal::Int(5)));
        assert_eq!(p("5 >= nnz"), cmp("nnz", Le, Literal::Int(5)));
        assert_eq!(p("'a' == x"), cmp("x", Eq, s("a")));
        // Booleans.
        assert_eq!(
            p("is_primary_data == True"),
            cmp("is_primary_data", Eq, Literal::Bool(true))
        );
        assert_eq!(p("f == false"), cmp("f", Eq, Literal::Bool(false)));
        // Escapes.
        assert_eq!(
            p(r#"x == 'it\'s \\ "q"'"#),
            cmp("x", Eq, s("it's \\ \"q\""))
        );
        assert_eq!(p(r#"x == "a\"b""#), cmp("x", Eq, s("a\"b")));
        // Non-ASCII strings.
        assert_eq!(
            p("tissue == 'Körper – 脳'"),
            cmp("tissue", Eq, s("Körper – 脳"))
        );
        // Huge integers become floats; i64::MIN stays an integer.
        assert_eq!(
            p("x == 99999999999999999999"),
            cmp("x", Eq, Literal::Float(1e20))
        );
        assert_eq!(
            p("x == -9223372036854775808"),
            cmp("x", Eq, Literal::Int(i64::MIN))
        );
        // attr("…") for odd names.
        assert_eq!(
            p(r#"attr("cell type") == 'T'"#),
            cmp("cell type", Eq, s("T"))
        );
        assert_eq!(
            p(r#"attr('a.b') in [1]"#),
            FilterExpr::In {
                column: "a.b".into(),
                values: vec![Literal::Int(1)],
                negated: false,
            }
        );
        // A column that happens to be called attr.
        assert_eq!(p("attr == 1"), cmp("attr", Eq, Literal::Int(1)));
        // Chained comparison.
        assert_eq!(
            p("1 < nnz <= 5"),
            and(
                cmp("nnz", Gt, Literal::Int(1)),
                cmp("nnz", Le, Literal::Int(5))
            )
        );
    }

    #[test]
    fn filter_parses_in_lists() {
        assert_eq!(
            p("tissue in ['liver', 'lung']"),
            FilterExpr::In {
                column: "tissue".into(),
                values: vec![s("liver"), s("lung")],
                negated: false
            }
        );
        assert_eq!(
            p("tissue not in ('liver', \"lung\",)"),
            FilterExpr::In {
                column: "tissue".into(),
                values: vec![s("liver"), s("lung")],
                negated: true
            }
        );
        assert_eq!(
            p("n in [1, -2, 3.5, True]"),
            FilterExpr::In {
                column: "n".into(),
                values: vec![
                    Literal::Int(1),
                    Literal::Int(-2),
                    Literal::Float(3.5),
                    Literal::Bool(true)
                ],
                negated: false
            }
        );
        assert_eq!(
            p("n in []"),
            FilterExpr::In {
                column: "n".into(),
                values: vec![],
                negated: false
            }
        );
    }

    #[test]
    fn filter_precedence() {
        // and binds tighter than or.
        assert_eq!(p("a == 1 or b == 2 and c == 3"), or(a1(), and(b2(), c3())));
        assert_eq!(p("a == 1 and b == 2 or c == 3"), or(and(a1(), b2()), c3()));
        // & and | are synonyms, comparisons bind tighter.
        assert_eq!(p("a == 1 | b == 2 & c == 3"), or(a1(), and(b2(), c3())));
        // not binds tighter than and.
        assert_eq!(p("not a == 1 and b == 2"), and(not(a1()), b2()));
        assert_eq!(p("not (a == 1 and b == 2)"), not(and(a1(), b2())));
        assert_eq!(p("not not a == 1"), not(not(a1())));
        // Parentheses.
        assert_eq!(
            p("(a == 1 or b == 2) and c == 3"),
            and(or(a1(), b2()), c3())
        );
        assert_eq!(p("((a == 1))"), a1());
        // Chains are left-leaning.
        assert_eq!(
            p("a == 1 and b == 2 and c == 3"),
            and(and(a1(), b2()), c3())
        );
        assert_eq!(p("a == 1 or b == 2 or c == 3"), or(or(a1(), b2()), c3()));
        // not in versus not (… in …).
        assert_eq!(
            p("not x in [1]"),
            not(FilterExpr::In {
                column: "x".into(),
                values: vec![Literal::Int(1)],
                negated: false
            })
        );
        // Long chains make shallow trees.
        let long: Vec<String> = (0..1000).map(|i| format!("x == {i}")).collect();
        let f = p(&long.join(" or "));
        fn depth(e: &FilterExpr) -> usize {
            match e {
                FilterExpr::And(l, r) | FilterExpr::Or(l, r) => 1 + depth(l).max(depth(r)),
                FilterExpr::Not(i) => 1 + depth(i),
                _ => 1,
            }
        }
        assert!(depth(&f) <= 12);
    }

    #[test]
    fn filter_display_roundtrips() {
        for text in [
            "a == 1 or b == 2 and c == 3",
            "(a == 1 or b == 2) and not (c == 3 or x in ['p', 'q'])",
            r#"attr("cell type") != 'it\'s' and y not in [1.5, -2, True]"#,
            "not not a == 1",
            "x >= 1e-7 and x < 1e20",
        ] {
            let f = p(text);
            let shown = f.to_string();
            assert_eq!(p(&shown), f, "{text} -> {shown}");
        }
        assert_eq!(
            p(r#"attr("in") == 'a' & b == "x""#).to_string(),
            r#"attr("in") == 'a' and b == 'x'"#
        );
    }

    #[test]
    fn filter_columns() {
        let f = ValueFilter::parse("tissue == 'a' and (nnz > 5 or tissue in ['b']) and Age < 3")
            .expect("parse");
        assert_eq!(f.columns(), vec!["Age", "nnz", "tissue"]);
        assert_eq!(
            f.text(),
            "tissue == 'a' and (nnz > 5 or tissue in ['b']) and Age < 3"
        );
    }

    #[test]
    fn filter_error_messages() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "empty value filter"),
            ("   ", 3, "empty value filter"),
            (
                "dataset_id == ",
                14,
                "expected a value after '==' but the filter ends",
            ),
            (
                "dataset_id == and x == 1",
                14,
                "expected a value after '==', found 'and'",
            ),
            ("x == 'abc", 5, "unterminated string"),
            ("x == 'abc\\", 5, "unterminated string"),
            (
                "x == 1 y",
                7,
                "unexpected name 'y' after a complete condition",
            ),
            ("x == 1 AND y == 2", 7, "keywords are lower case"),
            ("(x == 1", 7, "expected ')' to close the '(' at character 1"),
            ("x == 1)", 6, "unmatched ')'"),
            ("x in", 4, "expected a list such as ['a', 'b'] after 'in'"),
            ("x in 'a'", 5, "expected a list such as"),
            ("x not in [1, 2", 14, "expected ',' or ']'"),
            ("x in [a]", 6, "found name 'a' (quote strings: 'a')"),
            ("1 == 2", 5, "comparison between two values"),
            ("a == b", 5, "comparison between two columns"),
            ("'a' in ['a']", 0, "'in' needs a column name"),
            (
                "x",
                1,
                "expected a comparison (==, !=, <, <=, >, >=, in, not in) after column 'x'",
            ),
            ("x = 1", 2, "use '==' for equality"),
            ("x ! 1", 2, "unexpected '!'"),
            ("x == 1e999", 5, "out of range"),
            ("x == 12abc", 5, "invalid number '12abc'"),
            (
                "x == 1 and",
                10,
                "expected a condition such as column == 'value' but the filter ends",
            ),
            ("x == 1 or or", 10, "expected a condition"),
            ("x == -", 6, "expected a number after '-'"),
            ("x == -'a'", 6, "expected a number after '-'"),
            ("tissue == 'é' and ü == 1", 18, "unexpected character 'ü'"),
            ("abé == 1", 2, "unexpected character 'é' in a name"),
            ("x == 1 @", 7, "unexpected character '@'"),
            (
                "attr(x) == 1",
                5,
                "expected a quoted column name inside attr",
            ),
            ("attr('x' == 1", 9, "expected ')' after the name in attr"),
            ("not", 3, "expected a condition"),
            ("()", 1, "expected a condition"),
            ("x in [1 2]", 8, "expected ',' or ']'"),
            ("x == 1 < 2", 9, "comparison between two values"),
        ];
        for (text, offset, needle) in cases {
            let e = perr(text);
            assert!(
                e.message.contains(needle),
                "{text:?}: message {:?} lacks {needle:?}",
                e.message
            );
            assert_eq!(e.offset, *offset, "{text:?}: {e}");
            assert_eq!(&e.text, text);
        }
        // The Display form names the position and quotes the text.
        let e = perr("dataset_id == ");
        assert_eq!(
            e.to_string(),
            "expected a value after '==' but the filter ends at character 15 of value filter \"dataset_id == \""
        );
        let e = perr("x == 1 and y ==");
        assert!(e.to_string().contains("at character 16"), "{e}");
    }

    #[test]
    fn filter_never_panics() {
        let deep_parens = format!("{}x == 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(perr(&deep_parens).message.contains("nested too deeply"));
        let deep_not = format!("{}x == 1", "not ".repeat(10_000));
        assert!(perr(&deep_not).message.contains("nested too deeply"));
        // Every prefix of some valid filters either parses or errors with an in-range offset.
        for text in [
            r#"dataset_id == 'abc' and tissue in ['liver', "lung"] or not (nnz >= -1.5e3 | attr("a b") != True)"#,
            "é == 'ü' & (x not in ('α', 'β',))",
        ] {
            let chars: Vec<char> = text.chars().collect();
            for n in 0..=chars.len() {
                let prefix: String = chars[..n].iter().collect();
                if let Err(e) = ValueFilter::parse(&prefix) {
                    assert!(e.offset <= n, "{prefix:?}: {e}");
                    let _ = e.to_string();
                }
            }
        }
        // Garbage.
        for text in [
            "\\",
            "'",
            "\"",
            "[",
            "]",
            ",",
            "&&",
            "||",
            "==",
            "in [1]",
            "not in",
            "-",
            "1e",
            "x == 1e",
            "x == 1.e5",
            "\u{0}",
            "x == '\u{10FFFF}'",
        ] {
            let _ = ValueFilter::parse(text);
        }
    }

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "cell_type",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("nnz", DataType::Int64, true),
            Field::new("score", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("Tissue Type", DataType::LargeUtf8, true),
            Field::new("view", DataType::Utf8View, true),
        ])
    }

    #[test]
    fn filter_check_columns_and_types() {
        let schema = schema();
        let ok = |t: &str| {
            let f = ValueFilter::parse(t).expect("parse");
            f.check(&schema).map_err(|e| e.to_string())
        };
        assert_eq!(
            ok("cell_type in ['T', 'B'] and nnz > 1.5 and score < 3 and flag == True"),
            Ok(())
        );
        assert_eq!(ok(r#"attr("Tissue Type") == 'x' or view != 'y'"#), Ok(()));

        let err = |t: &str| {
            let f = ValueFilter::parse(t).expect("parse");
            match f.check(&schema) {
                Ok(()) => panic!("{t} passed check"),
                Err(e) => e,
            }
        };
        let e = err("nnz > 1 and celltype == 'T'");
        assert_eq!(e.offset, 12);
        assert!(
            e.message.starts_with("unknown column 'celltype'; did you mean 'cell_type'? (columns: id, name, cell_type, nnz"),
            "{}",
            e.message
        );
        let e = err("NNZ > 1");
        assert!(e.message.contains("did you mean 'nnz'?"), "{}", e.message);
        let e = err("completely_else == 1");
        assert!(!e.message.contains("did you mean"), "{}", e.message);
        assert!(
            e.message.contains("(columns: id, name, cell_type"),
            "{}",
            e.message
        );

        // Type errors point at the offending value.
        let e = err("nnz == 'five'");
        assert_eq!(e.offset, 7);
        assert!(
            e.message.contains("column 'nnz' has type Int64 (a numeric column) but is compared with the string 'five'"),
            "{}",
            e.message
        );
        let e = err("cell_type in ['T', 5]");
        assert_eq!(e.offset, 19);
        assert!(e.message.contains("column 'cell_type' has type Dictionary(Int32, Utf8) (a string column) but is compared with the number 5"), "{}", e.message);
        let e = err("flag == 1");
        assert!(
            e.message.contains("column 'flag' has type Boolean"),
            "{}",
            e.message
        );
        let e = err("name == True");
        assert!(e.message.contains("the boolean True"), "{}", e.message);
        let e = err("3 < view");
        assert_eq!(e.offset, 0);
        assert!(
            e.message.contains("column 'view' has type Utf8View"),
            "{}",
            e.message
        );

        // Long column lists are elided.
        let many = Schema::new(
            (0..30)
                .map(|i| Field::new(format!("col{i:02}"), DataType::Int64, true))
                .collect::<Vec<_>>(),
        );
        let e = ValueFilter::parse("zzz == 1")
            .expect("parse")
            .check(&many)
            .expect_err("unknown");
        assert!(e.message.contains("col11, … (18 more)"), "{}", e.message);
    }

    #[test]
    fn filter_edit_distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("celltype", "cell_type"), 1);
        assert_eq!(suggest("tisue", &["tissue", "assay"]), Some("tissue"));
        assert_eq!(suggest("xyz", &["tissue", "assay"]), None);
    }

    /// Rows (id: name, cell_type, nnz, score, flag, Tissue Type):
    /// 0: "a",  "T",  1,    0.5,  true,  "liver"
    /// 1: "b",  "B",  5,    2.0,  false, "lung"
    /// 2: null, "T",  10,   null, true,  "liver"
    /// 3: "d",  null, null, 7.5,  null,  null
    /// 4: "e",  "NK", 3,    -1.0, false, "brain"
    /// 5: "f",  "B",  7,    3.0,  true,  "lung"
    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "cell_type",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("nnz", DataType::Int64, true),
            Field::new("score", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("Tissue Type", DataType::Utf8, true),
        ]));
        let cell_type: DictionaryArray<Int32Type> =
            vec![Some("T"), Some("B"), Some("T"), None, Some("NK"), Some("B")]
                .into_iter()
                .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![0, 1, 2, 3, 4, 5])),
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                None,
                Some("d"),
                Some("e"),
                Some("f"),
            ])),
            Arc::new(cell_type),
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(5),
                Some(10),
                None,
                Some(3),
                Some(7),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(0.5),
                Some(2.0),
                None,
                Some(7.5),
                Some(-1.0),
                Some(3.0),
            ])),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
            Arc::new(StringArray::from(vec![
                Some("liver"),
                Some("lung"),
                Some("liver"),
                None,
                Some("brain"),
                Some("lung"),
            ])),
        ];
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    async fn select_ids(
        ctx: &SessionContext,
        filter: &ValueFilter,
    ) -> datafusion::error::Result<Vec<i64>> {
        let df = ctx
            .table("cells")
            .await?
            .filter(filter.to_expr())?
            .select(vec![column_expr("id")])?;
        let mut ids = Vec::new();
        for b in df.collect().await? {
            let col = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("id column")
                .clone();
            ids.extend(col.values().iter().copied());
        }
        ids.sort();
        Ok(ids)
    }

    #[test]
    fn filter_end_to_end_datafusion() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let b = batch();
        let schema = b.schema();
        let cases: &[(&str, &[i64])] = &[
            ("cell_type == 'T'", &[0, 2]),
            ("cell_type in ['B', 'NK']", &[1, 4, 5]),
            ("cell_type not in ['B']", &[0, 2, 4]), // null row 3 excluded
            ("cell_type != 'T'", &[1, 4, 5]),
            ("not cell_type == 'T'", &[1, 4, 5]),
            ("name == 'a' or name == 'f'", &[0, 5]),
            ("name != 'a'", &[1, 3, 4, 5]), // null name (row 2) excluded
            ("nnz > 4", &[1, 2, 5]),
            ("4 < nnz", &[1, 2, 5]),
            ("10 <= nnz", &[2]),
            ("nnz >= 4.5 and nnz < 7.5", &[1, 5]), // int column, float literals
            ("nnz == 5.0", &[1]),
            ("1 < nnz <= 7", &[1, 4, 5]),
            ("score < 2", &[0, 4]), // float column, int literal
            ("score >= -1.0 & flag == True", &[0, 5]),
            ("flag == False | nnz in [1, 10]", &[0, 1, 2, 4]),
            ("flag != true", &[1, 4]),
            ("not (flag == True or cell_type == 'NK')", &[1]),
            ("nnz in [3, 7.0]", &[4, 5]),
            ("nnz not in (1, 5, 10)", &[4, 5]),
            (
                r#"attr("Tissue Type") in ['liver', 'brain'] and not name == 'a'"#,
                &[4],
            ),
            ("nnz in []", &[]),
            ("nnz not in []", &[0, 1, 2, 3, 4, 5]),
            ("(nnz > 4 or score > 5) and cell_type != 'B'", &[2]),
        ];
        let result: datafusion::error::Result<()> = rt.block_on(async {
            let ctx = SessionContext::new();
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![b.clone()]])?;
            ctx.register_table("cells", Arc::new(table))?;
            for (text, expected) in cases {
                let f = ValueFilter::parse(text).expect("parse");
                f.check(&schema).expect("check");
                let got = select_ids(&ctx, &f).await?;
                assert_eq!(&got, expected, "filter {text}");
            }
            Ok(())
        });
        result.expect("datafusion");
    }
}
