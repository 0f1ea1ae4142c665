//! Shape-tolerant access to free-form request and response bodies.
//!
//! CloudTrail renders bodies that S3 and EC2 receive as XML the way the XML was: one element is
//! an object, several are an array, lists are often wrapped in `{"items": [...]}`, and numbers
//! may arrive as strings. Request parameters also change case between API versions
//! (`HttpTokens` vs `httpTokens`). Every such quirk is absorbed here, once, so detectors can ask
//! plain questions.

use simd_json::prelude::*;

/// A JSON value borrowed from a parsed record.
pub type Json<'a> = simd_json::tape::Value<'a, 'a>;

/// Looks up the first of several spellings of a key (`["HttpTokens", "httpTokens"]`).
pub fn get_any<'a>(value: Json<'a>, keys: &[&str]) -> Option<Json<'a>> {
    let object = value.as_object()?;
    keys.iter().find_map(|key| object.get(*key))
}

/// Follows a path of keys from `value`; each step may be spelled several ways.
pub fn path<'a>(value: Json<'a>, steps: &[&[&str]]) -> Option<Json<'a>> {
    steps.iter().try_fold(value, |current, keys| get_any(current, keys))
}

/// A string value, or `None` for any other type.
pub fn text<'a>(value: Option<Json<'a>>) -> Option<&'a str> {
    value?.into_string()
}

/// A string at `key` (either spelling), non-empty.
pub fn text_at<'a>(value: Json<'a>, keys: &[&str]) -> Option<&'a str> {
    text(get_any(value, keys)).filter(|s| !s.is_empty())
}

/// A number given as a JSON number or as a numeric string (`22`, `"22"`).
pub fn number(value: Option<Json<'_>>) -> Option<i64> {
    let value = value?;
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    if let Some(f) = value.as_f64() {
        return (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64);
    }
    value.into_string()?.trim().parse().ok()
}

/// A boolean given as `true` or `"true"` (any case).
pub fn boolean(value: Option<Json<'_>>) -> Option<bool> {
    let value = value?;
    if let Some(b) = value.as_bool() {
        return Some(b);
    }
    let s = value.into_string()?;
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Every element of an XML-rendered list: an array yields its elements, `{"items": x}` (or
/// `{"item": x}`) yields the elements of `x`, any other object yields itself once, and a missing
/// or null value yields nothing.
pub fn elements(value: Option<Json<'_>>) -> Vec<Json<'_>> {
    let mut out = Vec::new();
    collect_elements(value, &mut out, 0);
    out
}

fn collect_elements<'a>(value: Option<Json<'a>>, out: &mut Vec<Json<'a>>, depth: u8) {
    let Some(value) = value else { return };
    if depth > 4 {
        return;
    }
    if let Some(array) = value.as_array() {
        out.extend(array.iter());
    } else if let Some(inner) = get_any(value, &["items", "item", "Items", "Item"]) {
        collect_elements(Some(inner), out, depth + 1);
    } else if value.is_object() {
        out.push(value);
    }
}

/// Strings of a value that may be one string or a list of them (`"22"` or `["22", "3389"]`).
pub fn strings<'a>(value: Option<Json<'a>>) -> Vec<&'a str> {
    match value {
        Some(v) => match v.as_array() {
            Some(array) => array.iter().filter_map(|e| e.into_string()).collect(),
            None => v.into_string().into_iter().collect(),
        },
        None => Vec::new(),
    }
}
