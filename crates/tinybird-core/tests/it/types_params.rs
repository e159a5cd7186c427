//! Query-parameter encoding and JWT fixed values.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::json;
use tinybird_core::params::{FixedValue, QueryParams, ToParam};
use tinybird_core::types::{ChType, DateTime64, Decimal, Int256, TinybirdType, UInt256};

fn encode<T: ToParam + ?Sized>(value: &T) -> Vec<String> {
    let mut params = QueryParams::new();
    params.add("k", value);
    params
        .pairs()
        .iter()
        .map(|(k, v)| {
            assert_eq!(k, "k");
            v.clone()
        })
        .collect()
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[test]
fn scalars_encode_as_the_template_functions_expect() {
    assert_eq!(encode(&42u8), ["42"]);
    assert_eq!(encode(&-7i64), ["-7"]);
    assert_eq!(encode(&u64::MAX), ["18446744073709551615"]);
    assert_eq!(encode(&i128::MIN), ["-170141183460469231731687303715884105728"]);
    assert_eq!(encode(&u128::MAX), ["340282366920938463463374607431768211455"]);
    assert_eq!(encode(&true), ["true"]);
    assert_eq!(encode(&false), ["false"]);
    assert_eq!(encode("ES"), ["ES"]);
    assert_eq!(encode(&String::from("a,b")), ["a,b"]);
    assert_eq!(encode(&NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()), ["2024-01-31"]);
    assert_eq!(encode(&dt("2024-01-31 23:59:58.75")), ["2024-01-31 23:59:58"]);
    assert_eq!(encode(&dt("2024-01-31 23:59:58.75").and_utc()), ["2024-01-31 23:59:58"]);
    // DateTime64() validates at least three fractional digits, whatever the precision.
    assert_eq!(encode(&DateTime64::<0>(dt("2024-01-31 23:59:58.75"))), ["2024-01-31 23:59:58.750"]);
    assert_eq!(encode(&DateTime64::<6>(dt("2024-01-31 23:59:58.75"))), ["2024-01-31 23:59:58.750000"]);
    assert_eq!(encode(&Ipv4Addr::new(10, 0, 0, 1)), ["10.0.0.1"]);
    assert_eq!(encode(&Ipv6Addr::LOCALHOST), ["::1"]);
    assert_eq!(encode(&uuid::Uuid::nil()), ["00000000-0000-0000-0000-000000000000"]);
    assert_eq!(encode(&"-12".parse::<Int256>().unwrap()), ["-12"]);
    assert_eq!(encode(&"12".parse::<UInt256>().unwrap()), ["12"]);
    assert_eq!(encode(&"1.50".parse::<Decimal>().unwrap()), ["1.50"]);
    assert_eq!(encode(&json!({"a": [1, 2]})), [r#"{"a":[1,2]}"#]);
}

#[test]
fn floats_use_the_shortest_form_python_reads() {
    assert_eq!(encode(&0.1f64), ["0.1"]);
    assert_eq!(encode(&0.1f32), ["0.1"]);
    assert_eq!(encode(&1.0f64), ["1"]);
    assert_eq!(encode(&-2.5f64), ["-2.5"]);
    assert_eq!(encode(&1e16f64), ["10000000000000000"]);
    assert_eq!(encode(&1.5e-7f64), ["0.00000015"]);
    assert_eq!(encode(&f64::INFINITY), ["inf"]);
    assert_eq!(encode(&f64::NEG_INFINITY), ["-inf"]);
    assert_eq!(encode(&f64::NAN), ["NaN"]);
    for v in [0.1f64, 1.0 / 3.0, 123456.789e10, 5e-324, f64::MAX] {
        assert_eq!(encode(&v)[0].parse::<f64>().unwrap(), v, "round trip of {v}");
    }
}

#[test]
fn options_and_sequences() {
    assert!(encode(&None::<u32>).is_empty());
    assert_eq!(encode(&Some(3u32)), ["3"]);
    assert_eq!(encode(&vec![1u64, 2, 3]), ["1", "2", "3"]);
    assert_eq!(encode(&[1i8, 2][..]), ["1", "2"]);
    assert_eq!(encode(&["a", "b"]), ["a", "b"]);
    assert!(encode(&Vec::<String>::new()).is_empty());
    assert_eq!(encode(&Some(vec!["x".to_string()])), ["x"]);
    assert_eq!(encode(&("a", 1u8)), ["a", "1"]);
    let map: BTreeMap<String, u64> = [("b".to_string(), 2), ("a".to_string(), 1)].into();
    assert_eq!(encode(&map), [r#"{"a":1,"b":2}"#]);
}

#[test]
fn query_string_is_form_encoded_and_keeps_order() {
    let mut params = QueryParams::new();
    params.add("start", &dt("2024-01-01 00:00:00"));
    params.add("q", "a&b=c ñ");
    params.add("ids", &vec![1u8, 2]);
    params.add("none", &None::<String>);
    assert_eq!(params.to_query_string(), "start=2024-01-01+00%3A00%3A00&q=a%26b%3Dc+%C3%B1&ids=1&ids=2");
    assert_eq!(params.pairs().len(), 4);
}

#[test]
fn fixed_values_keep_their_json_type() {
    assert_eq!(42u8.to_fixed(), json!(42));
    assert_eq!(u64::MAX.to_fixed(), json!(18446744073709551615u64));
    assert_eq!(u64::MAX.to_fixed().as_u64(), Some(u64::MAX));
    assert_eq!(i64::MIN.to_fixed(), json!(i64::MIN));
    assert_eq!(true.to_fixed(), json!(true));
    assert_eq!(1.5f64.to_fixed(), json!(1.5));
    assert_eq!(0.1f32.to_fixed(), json!(0.1));
    assert_eq!(f64::NAN.to_fixed(), json!("nan"));
    assert_eq!(f64::INFINITY.to_fixed(), json!("inf"));
    assert_eq!("org".to_fixed(), json!("org"));
    assert_eq!(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap().to_fixed(), json!("2024-01-02"));
    assert_eq!(dt("2024-01-02 03:04:05").to_fixed(), json!("2024-01-02 03:04:05"));
    assert_eq!(DateTime64::<3>(dt("2024-01-02 03:04:05.5")).to_fixed(), json!("2024-01-02 03:04:05.500"));
    // Wider than 64 bits: always strings, whatever the value.
    assert_eq!(5i128.to_fixed(), json!("5"));
    assert_eq!(u128::MAX.to_fixed(), json!("340282366920938463463374607431768211455"));
    assert_eq!("7".parse::<Int256>().unwrap().to_fixed(), json!("7"));
    assert_eq!("0.10".parse::<Decimal>().unwrap().to_fixed(), json!("0.10"));
    assert_eq!(vec![1u32, 2].to_fixed(), json!([1, 2]));
    assert_eq!(Some(3u8).to_fixed(), json!(3));
    assert_eq!(None::<u8>.to_fixed(), json!(null));
    let map: HashMap<&str, Vec<u8>> = [("b", vec![2]), ("a", vec![1])].into();
    assert_eq!(map.to_fixed(), json!({"a": [1], "b": [2]}));
    assert_eq!((1u8, "x").to_fixed(), json!([1, "x"]));
    assert_eq!(uuid::Uuid::nil().to_fixed(), json!("00000000-0000-0000-0000-000000000000"));
}

#[test]
fn default_tinybird_types() {
    fn ty<T: TinybirdType + ?Sized>() -> String {
        T::ch_type().to_string()
    }
    assert_eq!(ty::<bool>(), "Bool");
    assert_eq!(ty::<i8>(), "Int8");
    assert_eq!(ty::<u64>(), "UInt64");
    assert_eq!(ty::<i128>(), "Int128");
    assert_eq!(ty::<u128>(), "UInt128");
    assert_eq!(ty::<Int256>(), "Int256");
    assert_eq!(ty::<UInt256>(), "UInt256");
    assert_eq!(ty::<f32>(), "Float32");
    assert_eq!(ty::<f64>(), "Float64");
    assert_eq!(ty::<String>(), "String");
    assert_eq!(ty::<&str>(), "String");
    assert_eq!(ty::<str>(), "String");
    assert_eq!(ty::<Box<str>>(), "String");
    assert_eq!(ty::<std::borrow::Cow<'static, str>>(), "String");
    assert_eq!(ty::<Option<u64>>(), "Nullable(UInt64)");
    assert_eq!(ty::<Option<Option<u64>>>(), "Nullable(UInt64)");
    assert_eq!(ty::<Vec<String>>(), "Array(String)");
    assert_eq!(ty::<[u8]>(), "Array(UInt8)");
    assert_eq!(ty::<[u8; 4]>(), "Array(UInt8)");
    assert_eq!(ty::<Vec<Option<i32>>>(), "Array(Nullable(Int32))");
    assert_eq!(ty::<HashMap<String, u64>>(), "Map(String, UInt64)");
    assert_eq!(ty::<BTreeMap<String, Vec<f64>>>(), "Map(String, Array(Float64))");
    assert_eq!(ty::<(String, u8)>(), "Tuple(String, UInt8)");
    assert_eq!(ty::<serde_json::Value>(), "JSON");
    assert_eq!(ty::<NaiveDate>(), "Date");
    assert_eq!(ty::<NaiveDateTime>(), "DateTime");
    assert_eq!(ty::<chrono::DateTime<chrono::Utc>>(), "DateTime");
    assert_eq!(ty::<DateTime64>(), "DateTime64(3)");
    assert_eq!(ty::<DateTime64<6>>(), "DateTime64(6)");
    assert_eq!(ty::<Ipv4Addr>(), "IPv4");
    assert_eq!(ty::<Ipv6Addr>(), "IPv6");
    assert_eq!(ty::<uuid::Uuid>(), "UUID");
    assert_eq!(ty::<Decimal>(), "Decimal(38, 9)");
    assert_eq!(<Option<u8>>::ch_type(), ChType::nullable(ChType::UInt8));
}
