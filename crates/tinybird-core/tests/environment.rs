//! The one test that changes the process environment, alone in its own process: `set_var` races with any other
//! thread reading the environment, so it cannot share the `it` binary with the rest.

use tinybird_core::client::Client;

const TOKEN: &str = "p.eyJ1IjogInRlc3QifQ.super-secret-signature";

#[test]
#[allow(unsafe_code)] // `set_var`/`remove_var` are `unsafe` (other threads may read the environment): no other test runs in this process.
fn from_env_reads_token_and_url() {
    unsafe {
        std::env::remove_var("TINYBIRD_URL");
        std::env::remove_var("TINYBIRD_HOST");
        std::env::remove_var("TINYBIRD_TOKEN");
    }
    let err = Client::from_env().unwrap_err();
    assert!(err.to_string().contains("TINYBIRD_TOKEN"), "{err}");
    unsafe {
        std::env::set_var("TINYBIRD_TOKEN", TOKEN);
        std::env::set_var("TINYBIRD_HOST", "api.us-east.tinybird.co");
    }
    assert_eq!(Client::from_env().unwrap().base_url().as_str(), "https://api.us-east.tinybird.co/");
    unsafe { std::env::set_var("TINYBIRD_URL", "http://localhost:7181/") };
    let c = Client::from_env().unwrap();
    assert_eq!(c.base_url().as_str(), "http://localhost:7181/");
    assert!(!format!("{c:?}").contains(TOKEN));
    unsafe {
        std::env::remove_var("TINYBIRD_URL");
        std::env::remove_var("TINYBIRD_HOST");
        std::env::remove_var("TINYBIRD_TOKEN");
    }
}
