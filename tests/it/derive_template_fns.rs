//! The typed template functions accept every Rust type whose values they can always read (the reverse is in
//! `tests/ui/template_types/`), through aliases too; and the param types come from the function that reads them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tinybird::Endpoint;

type UserId = u64;
type Day = NaiveDate;

#[derive(Debug, Endpoint)]
#[tinybird(
    sql = r#"%
SELECT count() AS n FROM events
WHERE user_id = {{UInt64(user_id)}}
  AND day >= {{Date(day)}}
  AND ts >= {{DateTime(since)}}
  AND ts64 >= {{DateTime64(since64)}}
  AND small = {{Int8(small)}} AND mid = {{Int32(mid)}} AND plain = {{Int(plain)}}
  AND ratio > {{Float64(ratio)}} AND flag = {{Boolean(flag)}}
  {% if defined(ids) %} AND id IN {{Array(ids, 'Int16')}} {% end %}
  {% if defined(names) %} AND name IN {{Array(names)}} {% end %}
  {% if defined(stamps) %} AND ts IN {{Array(stamps, 'DateTime')}} {% end %}
ORDER BY {{column(order_by, 'ts')}}
LIMIT {{UInt32(limit, 10)}}"#,
    output(n: u64)
)]
pub struct AllFunctions {
    pub user_id: UserId,
    pub day: Day,
    pub since: DateTime<Utc>,
    pub since64: tinybird::types::DateTime64<3>,
    pub small: i8,
    pub mid: u16,
    pub plain: i32,
    pub ratio: f32,
    pub flag: bool,
    pub ids: Option<Vec<u8>>,
    pub names: Option<Vec<String>>,
    pub stamps: Option<Vec<NaiveDateTime>>,
    pub order_by: Option<String>,
    #[tinybird(default = 10)]
    pub limit: Option<u32>,
}

#[test]
fn param_types_come_from_the_template_functions() {
    let def = AllFunctions::definition();
    let types: Vec<(&str, &str, bool)> =
        def.params.iter().map(|p| (p.name.as_str(), p.ty.as_str(), p.required)).collect();
    assert_eq!(
        types,
        [
            ("user_id", "UInt64", true),
            ("day", "Date", true),
            ("since", "DateTime", true),
            ("since64", "DateTime64", true),
            ("small", "Int8", true),
            ("mid", "Int32", true),
            ("plain", "Int32", true),
            ("ratio", "Float64", true),
            ("flag", "Boolean", true),
            ("ids", "Array(Int16)", false),
            ("names", "Array(String)", false),
            ("stamps", "Array(DateTime)", false),
            ("order_by", "String", false),
            ("limit", "UInt32", false),
        ]
    );
    assert_eq!(def.params.last().unwrap().default.as_deref(), Some("10"));
}

#[test]
fn every_param_is_sent_with_its_wire_form() {
    let p = AllFunctions {
        user_id: 1,
        day: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
        since: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        since64: tinybird::types::DateTime64::new(DateTime::<Utc>::from_timestamp(0, 0).unwrap().naive_utc()),
        small: -1,
        mid: 2,
        plain: 3,
        ratio: 0.5,
        flag: true,
        ids: Some(vec![1, 2]),
        names: None,
        stamps: None,
        order_by: Some("ts".into()),
        limit: None,
    };
    let params = p.to_params();
    let keys: Vec<&str> = params.pairs().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["user_id", "day", "since", "since64", "small", "mid", "plain", "ratio", "flag", "ids", "ids", "order_by"]
    );
    let get = |k: &str| params.pairs().iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("day"), Some("2024-01-31"));
    assert_eq!(get("since"), Some("1970-01-01 00:00:00"));
}
