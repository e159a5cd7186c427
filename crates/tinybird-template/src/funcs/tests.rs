use super::*;

#[test]
fn pow2_table() {
    assert_eq!(pow2(0), "1");
    assert_eq!(pow2(8), "256");
    assert_eq!(pow2(63), "9223372036854775808");
    assert_eq!(pow2(256), "115792089237316195423570985008687907853269984665640564039457584007913129639936");
}

#[test]
fn strptime_formats() {
    let a = strptime("2024-01-01", "%Y-%m-%d").unwrap();
    let b = strptime("2024-03-01", "%Y-%m-%d").unwrap();
    assert_eq!((b - a) / 86_400_000_000, 60);
    assert!(strptime("2024-02-30", "%Y-%m-%d").is_none());
    assert!(strptime("2022-12-19T18:42:23.521Z", "%Y-%m-%dT%H:%M:%S.%fz").is_some());
    assert!(strptime("2024-01-01 ", "%Y-%m-%d").is_none());
}

#[test]
fn datetime_testers() {
    assert!(test_value("DateTime", "2024-01-31 10:00:00"));
    assert!(test_value("DateTime", "2024-01-31T10:00:00Z"));
    assert!(test_value("DateTime", "31/01/2024 1:2:3"));
    assert!(!test_value("DateTime", "2024-01-31"));
    assert!(test_value("DateTime64", "2024-01-31 10:00:00.123"));
    assert!(!test_value("DateTime64", "2024-01-31 10:00:00"));
    assert!(test_value("Date", "2024-13-45"));
    assert!(test_value("Date", "2024-01-31\n"));
    assert!(!test_value("Date", "2024-01-31 "));
}

#[test]
fn int_testers() {
    assert!(test_value("Int8", "-128"));
    assert!(!test_value("Int8", "128"));
    assert!(test_value("UInt8", "255"));
    assert!(!test_value("UInt8", "-0"));
    assert!(test_value("UInt128", "-0"));
    assert!(test_value("Int64", "9223372036854775807"));
    assert!(!test_value("Int64", "9223372036854775808"));
    assert!(test_value("Int64", "-9223372036854775808"));
    assert!(test_value("Int32", "+007"));
    assert!(test_value("Int32", "7\n"));
    assert!(!test_value("Int32", " 7"));
    assert!(!test_value("UInt256", &"9".repeat(79)));
}
