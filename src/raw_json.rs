//! A target's `Result` as JSON text, never as a parsed tree: one copy of a big output in flight.
//!
//! [`result_text`] turns a child's stdout into the exact compact text `serde_json` wrote when the
//! output was parsed into a `serde_json::Value` first (key order kept, duplicate keys merged
//! the way the `Value` did, numbers and escapes as `serde_json` writes them). It streams the
//! output from `serde_json`'s own parser to its own printer, token by token, so the tree is
//! never built; what that stream cannot give exactly (duplicate keys, `serde_json`'s private
//! key names) goes the old way, through a `Value`, so the bytes are the same by construction.
//!
//! [`Pretty`] lays compact text out as `serde_json`'s pretty printer does, a piece at a time,
//! for the pretty document.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Write};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

/// The key under which `serde_json` (with `arbitrary_precision`) hands a number to a visitor.
const NUMBER_KEY: &str = "$serde_json::private::Number";
/// The key a `Value` reads as embedded raw JSON (with `raw_value`): left to the `Value` path.
const RAW_KEY: &str = "$serde_json::private::RawValue";

/// A child's stdout as it goes under `Result`, as compact JSON text: nested when the whole
/// output is a JSON object, array or string, otherwise the text exactly as printed, decoded
/// lossily, as a JSON string: [`result_value`]'s `Value` printed compact, byte for byte.
pub fn result_text(stdout: &[u8]) -> Box<RawValue> {
    let text = streamed(stdout).unwrap_or_else(|| {
        // The old way, exactly: the parsed value, printed compact.
        serde_json::to_string(&result_value(stdout)).expect("a Value prints")
    });
    RawValue::from_string(text).expect("serde_json printed valid JSON")
}

/// The compact text of a JSON object, array or string output, streamed; `None` when the
/// output is not one, or when only the `Value` path gives its exact bytes.
fn streamed(stdout: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(stdout).ok()?;
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .bytes()
        .next();
    if !matches!(first, Some(b'{' | b'[' | b'"')) {
        // A number, `true`, `false`, `null` or no JSON at all: the Value path makes it text.
        return text_result(stdout);
    }
    let mut out = Vec::with_capacity(stdout.len());
    let mut de = serde_json::Deserializer::from_str(text);
    let mut ser = serde_json::Serializer::new(&mut out);
    let pull = Pull::new(&mut de, true);
    pull.serialize(&mut ser).ok()?;
    de.end().ok()?;
    String::from_utf8(out).ok()
}

/// A child's stdout as it goes under `Result`: parsed when the whole output is a JSON object,
/// array or string, so `aws ... --output json` nests as data; otherwise the text exactly as
/// printed, decoded lossily. A bare number, boolean or `null` stays text, so one command gives
/// one type in every account: `--output text` printing `012345678901` and `123456789012` gives
/// two strings, not a string and a number.
/// Kept as the reference of [`result_text`], and for what only the `Value` gives exactly.
pub fn result_value(stdout: &[u8]) -> serde_json::Value {
    use serde_json::Value;
    match serde_json::from_slice::<Value>(stdout) {
        Ok(value @ (Value::Object(_) | Value::Array(_) | Value::String(_))) => value,
        _ => Value::String(String::from_utf8_lossy(stdout).into_owned()),
    }
}

/// Output that is not a JSON object, array or string: the text as a JSON string, as the
/// `Value` path gives it.
fn text_result(stdout: &[u8]) -> Option<String> {
    serde_json::to_string(&String::from_utf8_lossy(stdout)).ok()
}

/// A value still in the parser, printed by pulling it out token by token.
struct Pull<D> {
    de: Cell<Option<D>>,
    top: bool,
}

impl<D> Pull<D> {
    fn new(de: D, top: bool) -> Self {
        Pull {
            de: Cell::new(Some(de)),
            top,
        }
    }
}

impl<'de, D: Deserializer<'de>> Serialize for Pull<D> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let de = self
            .de
            .take()
            .ok_or_else(|| ser::Error::custom("a value pulled twice"))?;
        de.deserialize_any(Forward { ser, top: self.top })
            .map_err(ser::Error::custom)
    }
}

/// Hands each token the parser visits to the printer.
struct Forward<S> {
    ser: S,
    top: bool,
}

fn printed<T, E: ser::Error, F: de::Error>(result: Result<T, E>) -> Result<T, F> {
    result.map_err(F::custom)
}

impl<'de, S: Serializer> Visitor<'de> for Forward<S> {
    type Value = S::Ok;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<S::Ok, E> {
        printed(self.ser.serialize_bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<S::Ok, E> {
        printed(self.ser.serialize_i64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<S::Ok, E> {
        printed(self.ser.serialize_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<S::Ok, E> {
        printed(self.ser.serialize_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<S::Ok, E> {
        printed(self.ser.serialize_str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<S::Ok, E> {
        printed(self.ser.serialize_unit())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<S::Ok, A::Error> {
        let mut out = printed(self.ser.serialize_seq(None))?;
        while seq.next_element_seed(Element(&mut out))?.is_some() {}
        printed(out.end())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<S::Ok, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return printed(self.ser.serialize_map(None).and_then(|m| m.end()));
        };
        if first == NUMBER_KEY {
            // A number (or an object whose first key is that name: the Value reads it the
            // same way). At the top, the Value path makes it text: leave it that way.
            if self.top {
                return Err(de::Error::custom("a number at the top"));
            }
            let digits: String = map.next_value()?;
            let number: serde_json::Number = digits.parse().map_err(de::Error::custom)?;
            return printed(number.serialize(self.ser));
        }
        let mut out = printed(self.ser.serialize_map(None))?;
        let mut seen = HashSet::new();
        let mut key = Some(first);
        while let Some(k) = key {
            if k == RAW_KEY || !seen.insert(k.clone()) {
                // A duplicate key (the Value keeps the first place and the last value) or a
                // name the Value reads in its own way: the Value path decides.
                return Err(de::Error::custom("left to the Value path"));
            }
            printed(out.serialize_key(&k))?;
            map.next_value_seed(Member(&mut out))?;
            key = map.next_key::<String>()?;
        }
        printed(out.end())
    }
}

/// One element of an array, pulled into the printer's array.
struct Element<'a, T>(&'a mut T);

impl<'de, T: SerializeSeq> DeserializeSeed<'de> for Element<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        self.0
            .serialize_element(&Pull::new(de, false))
            .map_err(de::Error::custom)
    }
}

/// One member's value, pulled into the printer's object.
struct Member<'a, T>(&'a mut T);

impl<'de, T: SerializeMap> DeserializeSeed<'de> for Member<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        self.0
            .serialize_value(&Pull::new(de, false))
            .map_err(de::Error::custom)
    }
}

/// Lays compact JSON text (as `serde_json::to_writer` prints it) out as
/// `serde_json::to_writer_pretty` prints the same value, nested `depth` levels deep, a piece
/// at a time: it remembers across pieces whether it is in a string, and a bracket just opened.
pub struct Pretty {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A `{` or `[` was just written: its newline waits to see whether it is empty.
    opened: bool,
    buf: Vec<u8>,
}

impl Pretty {
    pub fn new(depth: usize) -> Self {
        Pretty {
            depth,
            in_string: false,
            escaped: false,
            opened: false,
            buf: Vec::new(),
        }
    }

    fn newline(&mut self) {
        self.buf.push(b'\n');
        self.buf.resize(self.buf.len() + 2 * self.depth, b' ');
    }

    pub fn write(&mut self, piece: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.buf.clear();
        for &b in piece {
            if self.opened {
                self.opened = false;
                if b == b'}' || b == b']' {
                    self.depth -= 1;
                    self.buf.push(b);
                    continue;
                }
                self.newline();
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                self.buf.push(b);
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.buf.push(b);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.opened = true;
                    self.buf.push(b);
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    self.newline();
                    self.buf.push(b);
                }
                b',' => {
                    self.buf.push(b);
                    self.newline();
                }
                b':' => self.buf.extend_from_slice(b": "),
                _ => self.buf.push(b),
            }
        }
        out.write_all(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn old(stdout: &[u8]) -> String {
        serde_json::to_string(&result_value(stdout)).unwrap()
    }

    fn pretty(compact: &str, pieces: usize) -> String {
        let mut out = Vec::new();
        let mut layout = Pretty::new(0);
        let size = compact.len().div_ceil(pieces.max(1)).max(1);
        for piece in compact.as_bytes().chunks(size) {
            layout.write(piece, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_streamed_text_is_the_values_text() {
        for stdout in [
            &b"  {\"z\": 1, \"a\" : [1, 2.50, -0, 1e400, 1.0E+2, true, null, {}, [], \"\"]}\n"[..],
            b"{\"dup\": 1, \"x\": 0, \"dup\": {\"y\": 2}}",
            b"{\"$serde_json::private::Number\": \"5\"}",
            b"{\"\\u0024serde_json::private::Number\": \"5\"}",
            b"[{\"$serde_json::private::Number\": \"5\"}]",
            b"[{\"$serde_json::private::Number\": \"x\"}]",
            b"[{\"$serde_json::private::Number\": \"5\", \"b\": 1}]",
            b"[{\"$serde_json::private::RawValue\": \"[1, 2]\"}]",
            b"{\"a\": 1, \"$serde_json::private::Number\": \"5\"}",
            b"\"\\u00e9\\/\\u001F\\ud83d\\ude00\"",
            b"\"\\ud800\"",
            b"[1, 2",
            b"[1] [2]",
            b"42",
            b"",
            b"\xff{}",
            b"{\"a\":\"\xff\"}",
        ] {
            assert_eq!(
                result_text(stdout).get(),
                old(stdout),
                "{:?}",
                String::from_utf8_lossy(stdout)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(result_text(deep.as_bytes()).get(), old(deep.as_bytes()));
    }

    #[test]
    fn empty_and_nested_containers_lay_out_as_serde_json_does() {
        let value: serde_json::Value = serde_json::from_str(
            r#"{"a":[],"b":{},"c":[[{}]],"d":{"e":[1,{"f":"g,h:[]{}\"\\"}]},"":""}"#,
        )
        .unwrap();
        let compact = serde_json::to_string(&value).unwrap();
        for pieces in [1, 3, 7, compact.len()] {
            assert_eq!(
                pretty(&compact, pieces),
                serde_json::to_string_pretty(&value).unwrap()
            );
        }
    }

    /// Any JSON: nested objects and arrays of odd strings and numbers.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[ -~\u{0}-\u{1f}\u{7f}\u{e9}\u{2028}\u{1f600}\"\\\\]{0,8}"
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-c\"\\\\ ]{0,3}", inner), 0..6).prop_map(|members| {
                    serde_json::Value::Object(members.into_iter().collect())
                }),
            ]
        })
    }

    /// The value written as a person or another tool might: spaces everywhere, unicode
    /// escapes, members repeated.
    fn loosely(value: &serde_json::Value, out: &mut String, dup: bool) {
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                out.push_str("{ ");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" ,\n");
                    }
                    let key: String = k.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
                    out.push_str(&format!("\"{key}\" :\t"));
                    loosely(v, out, dup);
                    if dup && i == 0 {
                        out.push_str(&format!(", \"{key}\": [0]"));
                    }
                }
                out.push_str(" }");
            }
            Value::Array(items) => {
                out.push_str("[\r\n");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" , ");
                    }
                    loosely(v, out, dup);
                }
                out.push_str(" ]");
            }
            other => out.push_str(&serde_json::to_string(other).unwrap()),
        }
    }

    proptest! {
        #[test]
        fn any_json_streams_to_the_values_bytes(value in json(), dup in any::<bool>()) {
            let mut written = String::new();
            loosely(&value, &mut written, dup);
            for stdout in [written.clone(), format!(" \n{written}\n"), serde_json::to_string_pretty(&value).unwrap()] {
                let text = result_text(stdout.as_bytes());
                prop_assert_eq!(text.get(), old(stdout.as_bytes()));
            }
        }

        #[test]
        fn any_bytes_stream_to_the_values_bytes(stdout in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = result_text(&stdout);
            prop_assert_eq!(text.get(), old(&stdout));
        }

        #[test]
        fn compact_text_lays_out_as_the_pretty_printer(value in json(), pieces in 1usize..9) {
            let compact = serde_json::to_string(&value).unwrap();
            prop_assert_eq!(pretty(&compact, pieces), serde_json::to_string_pretty(&value).unwrap());
        }
    }
}
