//! Tinybird's JSON forms: the `wire` helpers and the value types' own serde, without serde_json's
//! `arbitrary_precision`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use tinybird_core::types::wire::{self, Wire};
use tinybird_core::types::{DateTime64, Decimal, Int256, UInt256};

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[test]
fn arbitrary_precision_is_off_so_the_helpers_carry_the_precision() {
    // Without `arbitrary_precision`, a `Value` holds a number past u64 as an f64: the helpers must not go through it.
    let value: serde_json::Value = serde_json::from_str("18446744073709551616").unwrap();
    assert!(value.is_f64(), "serde_json's arbitrary_precision is on in this build: {value}");
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    #[serde(with = "wire")]
    at: NaiveDateTime,
    #[serde(with = "wire")]
    at_utc: DateTime<Utc>,
    #[serde(with = "wire")]
    day: NaiveDate,
    #[serde(with = "wire")]
    hits: u64,
    #[serde(with = "wire")]
    delta: i64,
    #[serde(with = "wire")]
    big: i128,
    #[serde(with = "wire")]
    ubig: u128,
    #[serde(with = "wire")]
    ratio: f64,
    #[serde(with = "wire")]
    flag: bool,
    #[serde(with = "wire")]
    maybe: Option<u64>,
    #[serde(with = "wire")]
    times: Vec<NaiveDateTime>,
    #[serde(with = "wire")]
    counts: BTreeMap<String, u64>,
}

#[test]
fn a_row_in_tinybird_json_decodes_and_encodes() {
    let json = r#"{
        "at": "2024-01-02 03:04:05",
        "at_utc": "2024-01-02T03:04:05.123Z",
        "day": "2024-01-02",
        "hits": 18446744073709551615,
        "delta": "-9223372036854775808",
        "big": -170141183460469231731687303715884105728,
        "ubig": "340282366920938463463374607431768211455",
        "ratio": null,
        "flag": 1,
        "maybe": null,
        "times": ["2024-01-02 03:04:05.5", "2024-01-02T03:04:06"],
        "counts": {"a": "9007199254740993", "b": 2}
    }"#;
    let row: Row = serde_json::from_str(json).unwrap();
    assert_eq!(row.at, dt("2024-01-02 03:04:05"));
    assert_eq!(row.at_utc, dt("2024-01-02 03:04:05.123").and_utc());
    assert_eq!(row.day, NaiveDate::from_ymd_opt(2024, 1, 2).unwrap());
    assert_eq!(row.hits, u64::MAX);
    assert_eq!(row.delta, i64::MIN);
    assert_eq!(row.big, i128::MIN);
    assert_eq!(row.ubig, u128::MAX);
    assert!(row.ratio.is_nan());
    assert!(row.flag);
    assert_eq!(row.maybe, None);
    assert_eq!(row.times, [dt("2024-01-02 03:04:05.5"), dt("2024-01-02 03:04:06")]);
    assert_eq!(row.counts["a"], 9_007_199_254_740_993);

    // Through text: a `Value` cannot hold the 128-bit numbers, the serializer writes them exactly.
    let text = serde_json::to_string(&row).unwrap();
    assert!(text.contains(r#""ubig":340282366920938463463374607431768211455"#), "{text}");
    let out: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(out["at"], "2024-01-02 03:04:05");
    assert_eq!(out["at_utc"], "2024-01-02 03:04:05");
    assert_eq!(out["day"], "2024-01-02");
    assert_eq!(out["hits"], u64::MAX);
    assert_eq!(out["ratio"], "nan");
    assert_eq!(out["flag"], true);
    assert_eq!(out["times"][0], "2024-01-02 03:04:05");
    assert_eq!(serde_json::to_string(&row.big).unwrap(), "-170141183460469231731687303715884105728");
}

#[test]
fn wide_integers_survive_a_value_round_trip_only_when_they_fit() {
    #[derive(Debug, Deserialize)]
    struct R {
        #[serde(with = "wire")]
        v: i128,
    }
    let small: R = serde_json::from_value(serde_json::json!({"v": -5})).unwrap();
    assert_eq!(small.v, -5);
    let quoted: R =
        serde_json::from_value(serde_json::json!({"v": "170141183460469231731687303715884105727"})).unwrap();
    assert_eq!(quoted.v, i128::MAX);
    // A Value already rounded this number to an f64: it is rejected, not silently rounded.
    let rounded: serde_json::Value = serde_json::from_str(r#"{"v": 170141183460469231731687303715884105727}"#).unwrap();
    let err = serde_json::from_value::<R>(rounded).unwrap_err().to_string();
    assert!(err.contains("is not a valid Int128"), "{err}");
}

#[test]
fn integers_reject_what_does_not_fit() {
    let err = |json: &str| serde_json::from_str::<Wire<u8>>(json).unwrap_err().to_string();
    assert!(err("256").contains("256 is out of range for UInt8"), "{}", err("256"));
    assert!(err("-1").contains("-1 is out of range for UInt8"));
    assert!(err("\"x\"").contains("`x` is not a valid UInt8"));
    assert!(err("1.5").contains("1.5 is not an exact UInt8"));
    let err = serde_json::from_str::<Wire<u64>>("18446744073709551616").unwrap_err().to_string();
    assert!(err.contains("not an exact UInt64"), "{err}");
    let err = serde_json::from_str::<Wire<u128>>("-1").unwrap_err().to_string();
    assert!(err.contains("`-1` is not a valid UInt128"), "{err}");
    let err = serde_json::from_str::<Wire<i128>>("true").unwrap_err().to_string();
    assert!(err.contains("a number or a string holding a number"), "{err}");
    assert_eq!(serde_json::from_str::<Wire<i32>>("\"+42\"").unwrap().0, 42);
}

#[test]
fn floats_accept_what_clickhouse_writes() {
    let f = |json: &str| serde_json::from_str::<Wire<f64>>(json).unwrap().0;
    assert!(f("null").is_nan());
    assert!(f("\"nan\"").is_nan());
    assert!(f("\"-nan\"").is_nan());
    assert_eq!(f("\"inf\""), f64::INFINITY);
    assert_eq!(f("\"+inf\""), f64::INFINITY);
    assert_eq!(f("\"-inf\""), f64::NEG_INFINITY);
    assert_eq!(f("\"1.5\""), 1.5);
    assert_eq!(f("3"), 3.0);
    assert_eq!(f("-1e300"), -1e300);
    assert_eq!(serde_json::from_str::<Wire<f32>>("0.1").unwrap().0, 0.1f32);
    assert!(serde_json::from_str::<Wire<f64>>("\"abc\"").is_err());
    assert_eq!(serde_json::to_string(&Wire(f64::NEG_INFINITY)).unwrap(), "\"-inf\"");
    assert_eq!(serde_json::to_string(&Wire(2.5f64)).unwrap(), "2.5");
    // Option keeps null as None.
    assert_eq!(serde_json::from_str::<Wire<Option<f64>>>("null").unwrap().0, None);
}

#[test]
fn bools_accept_numbers_and_strings() {
    let b = |json: &str| serde_json::from_str::<Wire<bool>>(json).map(|w| w.0);
    assert!(b("true").unwrap());
    assert!(!b("0").unwrap());
    assert!(b("\"1\"").unwrap());
    assert!(!b("\"false\"").unwrap());
    assert!(b("2").unwrap_err().to_string().contains("expected true, false, 1 or 0"));
}

#[test]
fn dates_and_times() {
    let t = |json: &str| serde_json::from_str::<Wire<NaiveDateTime>>(json).map(|w| w.0);
    assert_eq!(t("\"2024-05-01 12:30:00\"").unwrap(), dt("2024-05-01 12:30:00"));
    assert_eq!(t("\"2024-05-01T12:30:00.123456\"").unwrap(), dt("2024-05-01 12:30:00.123456"));
    assert_eq!(t("\"2024-05-01T12:30:00+02:00\"").unwrap(), dt("2024-05-01 10:30:00"));
    assert_eq!(t("1714566600").unwrap(), dt("2024-05-01 12:30:00"));
    let err = t("\"2024-05-01\"").unwrap_err().to_string();
    assert!(err.contains("invalid date-time `2024-05-01`"), "{err}");
    assert!(t("\"2024-13-01 00:00:00\"").is_err());
    let err = serde_json::from_str::<Wire<NaiveDate>>("\"2024-02-30\"").unwrap_err().to_string();
    assert!(err.contains("invalid date `2024-02-30`"), "{err}");
}

#[test]
fn datetime64_prints_its_precision() {
    let t = dt("2024-05-01 12:30:00.123456789");
    assert_eq!(serde_json::to_string(&DateTime64::<3>(t)).unwrap(), "\"2024-05-01 12:30:00.123\"");
    assert_eq!(serde_json::to_string(&DateTime64::<6>(t)).unwrap(), "\"2024-05-01 12:30:00.123456\"");
    assert_eq!(serde_json::to_string(&DateTime64::<9>(t)).unwrap(), "\"2024-05-01 12:30:00.123456789\"");
    assert_eq!(serde_json::to_string(&DateTime64::<0>(t)).unwrap(), "\"2024-05-01 12:30:00\"");
    let back: DateTime64<6> = serde_json::from_str("\"2024-05-01 12:30:00.123456\"").unwrap();
    assert_eq!(back.0, dt("2024-05-01 12:30:00.123456"));
    assert_eq!("2024-05-01T12:30:00.5".parse::<DateTime64>().unwrap().to_string(), "2024-05-01 12:30:00.500");
    assert!(
        "yesterday".parse::<DateTime64>().unwrap_err().to_string().starts_with("invalid DateTime64 value `yesterday`")
    );
}

#[test]
fn int256_and_uint256_are_validated_decimal_text() {
    let max = "57896044618658097711785492504343953926634992332820282019728792003956564819967";
    let min = "-57896044618658097711785492504343953926634992332820282019728792003956564819968";
    assert_eq!(serde_json::from_str::<Int256>(max).unwrap().as_str(), max);
    assert_eq!(serde_json::from_str::<Int256>(&format!("\"{min}\"")).unwrap().as_str(), min);
    let over = "57896044618658097711785492504343953926634992332820282019728792003956564819968";
    assert_eq!(over.parse::<Int256>().unwrap_err().to_string(), format!("invalid Int256 value `{over}`: out of range"));
    assert!(serde_json::from_str::<Int256>(over).is_err());
    assert_eq!("+007".parse::<Int256>().unwrap().as_str(), "7");
    assert_eq!("-0".parse::<Int256>().unwrap().as_str(), "0");
    assert!("1e5".parse::<Int256>().is_err());
    assert!("".parse::<Int256>().is_err());
    let umax = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    assert_eq!(serde_json::from_str::<UInt256>(umax).unwrap().to_string(), umax);
    assert!(format!("{umax}0").parse::<UInt256>().is_err());
    assert_eq!(
        "-1".parse::<UInt256>().unwrap_err().to_string(),
        "invalid UInt256 value `-1`: negative value for an unsigned type"
    );
    // Written as strings, which serde_json can always carry.
    assert_eq!(serde_json::to_string(&UInt256::from(5u64)).unwrap(), "\"5\"");
    assert_eq!(Int256::from(i128::MIN).as_str(), i128::MIN.to_string());
}

#[test]
fn decimal_keeps_every_digit() {
    let d: Decimal = serde_json::from_str("12345678901234567890.12345678901234567890").unwrap();
    assert_eq!(d.as_str(), "12345678901234567890.12345678901234567890");
    let d: Decimal = serde_json::from_str("\"-0.50\"").unwrap();
    assert_eq!(d.to_string(), "-0.50");
    assert_eq!(serde_json::to_string(&d).unwrap(), "\"-0.50\"");
    for bad in ["1.", ".5", "1e3", "abc", "1.2.3", ""] {
        assert!(bad.parse::<Decimal>().is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<Decimal>("1e3").is_err());
}

#[test]
fn value_types_inside_options_and_vecs_need_no_attribute() {
    #[derive(Debug, Deserialize)]
    struct R {
        a: Option<UInt256>,
        b: Vec<DateTime64<3>>,
        c: Option<Decimal>,
    }
    let r: R =
        serde_json::from_str(r#"{"a": 123456789012345678901234567890, "b": ["2024-01-01 00:00:00.001"], "c": null}"#)
            .unwrap();
    assert_eq!(r.a.unwrap().as_str(), "123456789012345678901234567890");
    assert_eq!(r.b[0].to_string(), "2024-01-01 00:00:00.001");
    assert!(r.c.is_none());
}
